// Package callback delivers signed status callbacks: every state change of
// a message (the queue's state-change outbox) that its app subscribed to is
// turned into one asynq task of type TaskType on its own queue, and POSTed
// to the message's (or its app's) callback URL until a 2xx answers, with
// exponential backoff for api.callbacks.retry_for. The record shows the
// delivery state of each callback.
package callback

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/vms-project/vms/queue"
)

// Asynq task type and queue of callbacks.
const (
	TaskType = "vms:callback"
	Queue    = "vms-callback"
)

// Event names an app subscribes to (api.apps[].callback_events).
const (
	EventDialing  = "dialing"
	EventRinging  = "ringing"
	EventAnswered = "answered"
	EventFinal    = "final" // any terminal state
)

// EventName is the event a state change is reported as, "" for none.
func EventName(s queue.Status) string {
	switch s {
	case queue.StatusDialing:
		return EventDialing
	case queue.StatusRinging:
		return EventRinging
	case queue.StatusAnswered:
		return EventAnswered
	case queue.StatusQueued:
		return ""
	}
	return EventFinal
}

// EventID is the ID of the event "message reached status on attempt": the
// same state change always gets the same ID, however often it is relayed,
// so a receiver deduplicates on it.
func EventID(messageID string, status queue.Status, attempt int) string {
	sum := sha256.Sum256([]byte(messageID + "\x00" + string(status) + "\x00" + strconv.Itoa(attempt)))
	return "evt_" + hex.EncodeToString(sum[:16])
}

// Report is the JSON body of a status callback.
type Report struct {
	EventID        string       `json:"event_id"`
	Event          string       `json:"event"`
	MessageID      string       `json:"message_id"`
	AppID          string       `json:"app_id"`
	SessionContext string       `json:"session_context,omitempty"`
	Status         queue.Status `json:"status"`
	Final          bool         `json:"final"`
	Attempt        int          `json:"attempt"`
	OccurredAt     time.Time    `json:"occurred_at"`
	SIPCode        int          `json:"sip_code,omitempty"`
	SIPReason      string       `json:"sip_reason,omitempty"`
	// FailureCause says why a call did not complete, in words.
	FailureCause    string    `json:"failure_cause,omitempty"`
	HungUpBy        string    `json:"hung_up_by,omitempty"`
	PlayedToEnd     bool      `json:"played_to_end,omitempty"`
	EnqueuedAt      time.Time `json:"enqueued_at"`
	InviteAt        time.Time `json:"invite_at,omitzero"`
	RingingAt       time.Time `json:"ringing_at,omitzero"`
	AnsweredAt      time.Time `json:"answered_at,omitzero"`
	EndedAt         time.Time `json:"ended_at,omitzero"`
	BillableMS      int64     `json:"billable_ms"`
	BillableMinutes int       `json:"billable_minutes"`
	// DTMF are the keys the callee pressed, in order (when the trunk
	// reports them).
	DTMF string `json:"dtmf,omitempty"`
}

// NewReport builds the report of change from the message's record. A
// non-final event carries only what was known at that point, even when the
// record has moved on since.
func NewReport(ch queue.StateChange, rec *queue.Record) Report {
	ev := EventName(ch.Status)
	r := Report{EventID: EventID(ch.MessageID, ch.Status, ch.Attempt), Event: ev, MessageID: ch.MessageID,
		AppID: rec.AppID, SessionContext: rec.SessionContext, Status: ch.Status, Final: ev == EventFinal,
		Attempt: ch.Attempt, OccurredAt: ch.At, EnqueuedAt: rec.EnqueuedAt}
	switch ev {
	case EventFinal:
		r.SIPCode, r.SIPReason, r.HungUpBy, r.PlayedToEnd = rec.SIPCode, rec.SIPReason, rec.HungUpBy, rec.PlayedToEnd
		r.InviteAt, r.RingingAt, r.AnsweredAt, r.EndedAt = rec.InviteAt, rec.RingingAt, rec.AnsweredAt, rec.EndedAt
		r.BillableMS, r.BillableMinutes = rec.BillableMS, rec.BillableMinutes
		if ch.Status != queue.StatusCompleted {
			r.FailureCause = rec.Reason
		}
	case EventAnswered:
		r.InviteAt, r.RingingAt, r.AnsweredAt = rec.InviteAt, rec.RingingAt, rec.AnsweredAt
	case EventRinging:
		r.InviteAt, r.RingingAt = rec.InviteAt, rec.RingingAt
	}
	return r
}
