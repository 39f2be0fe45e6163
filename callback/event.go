// Package callback delivers signed status callbacks: every state change of
// a message (the queue's state-change outbox) that its app subscribed to is
// turned into one asynq task of type TaskType on its own queue, and POSTed
// to the message's (or its app's) callback URL until a 2xx answers, with
// the DTMF keys of a call in its final report and in one keypress report
// (EventKeypress), with
// exponential backoff for api.callbacks.retry_for. The record shows the
// delivery state of each callback.
package callback

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
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
	// EventKeypress lists the DTMF keys the callee pressed during a call.
	// Keys are known when the call ends, so it is one callback per call
	// attempt that had at least one key, sent with the final one.
	EventKeypress = "keypress"
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

// EventID is the ID of the event "message (by its key, queue.Key) reached status on attempt": the
// same state change always gets the same ID, however often it is relayed,
// so a receiver deduplicates on it.
func EventID(key string, status queue.Status, attempt int) string {
	sum := sha256.Sum256([]byte(key + "\x00" + string(status) + "\x00" + strconv.Itoa(attempt)))
	return "evt_" + hex.EncodeToString(sum[:16])
}

// KeypressEventID is the ID of the keypress event of a message's attempt.
// It is derived like EventID but can never equal one (no status is named
// "keypress"), and it does not depend on which final state reported it, so
// a call whose outcome is rewritten (unknown, then the late real outcome)
// still reports its keys under one ID.
func KeypressEventID(messageID string, attempt int) string {
	sum := sha256.Sum256([]byte(messageID + "\x00" + EventKeypress + "\x00" + strconv.Itoa(attempt)))
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
	// DTMF are the keys the callee pressed, in order, as one string
	// (final and keypress events).
	DTMF string `json:"dtmf,omitempty"`
	// Keys are the same keys with when each was pressed and how it
	// arrived (rfc4733 or info).
	Keys []queue.KeyPress `json:"keys,omitempty"`
	// Confirmed: the callee pressed the template's confirm key; OptedOut:
	// its opt-out key (the number is then suppressed for the app).
	Confirmed bool `json:"confirmed,omitempty"`
	OptedOut  bool `json:"opted_out,omitempty"`
}

// NewReport builds the report of change. The outcome of a final event is
// the one recorded with the change itself (a redial may have moved the
// record on since); the message's own fields come from its record. A
// non-final event carries only what was known at that point.
func NewReport(ch queue.StateChange, rec *queue.Record) Report {
	ev := EventName(ch.Status)
	o := &ch.Outcome
	if rec.Attempt == ch.Attempt {
		// Milestones recorded by earlier changes of the same attempt.
		o.InviteAt = orTime(o.InviteAt, rec.InviteAt)
		o.RingingAt = orTime(o.RingingAt, rec.RingingAt)
		if ev != EventRinging {
			o.AnsweredAt = orTime(o.AnsweredAt, rec.AnsweredAt)
		}
	}
	r := Report{EventID: EventID(ch.MessageID, ch.Status, ch.Attempt), Event: ev, MessageID: rec.ID,
		AppID: rec.AppID, SessionContext: rec.SessionContext, Status: ch.Status, Final: ev == EventFinal,
		Attempt: ch.Attempt, OccurredAt: ch.At, EnqueuedAt: rec.EnqueuedAt}
	switch ev {
	case EventFinal:
		r.SIPCode, r.SIPReason, r.HungUpBy, r.PlayedToEnd = o.SIPCode, o.SIPReason, o.HungUpBy, o.PlayedToEnd
		r.InviteAt, r.RingingAt, r.AnsweredAt, r.EndedAt = o.InviteAt, o.RingingAt, o.AnsweredAt, o.EndedAt
		r.BillableMS, r.BillableMinutes = o.BillableMS, o.BillableMinutes
		if ch.Status != queue.StatusCompleted {
			r.FailureCause = o.Reason
		}
		r.setKeys(o)
	case EventAnswered:
		r.InviteAt, r.RingingAt, r.AnsweredAt = o.InviteAt, o.RingingAt, o.AnsweredAt
	case EventRinging:
		r.InviteAt, r.RingingAt = o.InviteAt, o.RingingAt
	}
	return r
}

func orTime(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

// NewKeypressReport builds the keypress report of a final change, or
// returns false when the call had no keys. OccurredAt is when the last key
// was pressed.
func NewKeypressReport(ch queue.StateChange, rec *queue.Record) (Report, bool) {
	o := &ch.Outcome
	if EventName(ch.Status) != EventFinal || len(o.Keys) == 0 {
		return Report{}, false
	}
	r := Report{EventID: KeypressEventID(ch.MessageID, ch.Attempt), Event: EventKeypress, MessageID: rec.ID,
		AppID: rec.AppID, SessionContext: rec.SessionContext, Status: ch.Status, Attempt: ch.Attempt,
		OccurredAt: o.Keys[len(o.Keys)-1].At, EnqueuedAt: rec.EnqueuedAt,
		InviteAt: o.InviteAt, RingingAt: o.RingingAt, AnsweredAt: o.AnsweredAt, EndedAt: o.EndedAt}
	r.setKeys(o)
	return r, true
}

func (r *Report) setKeys(rec *queue.Record) {
	r.Keys, r.Confirmed, r.OptedOut = rec.Keys, rec.Confirmed, rec.OptedOut
	var b strings.Builder
	for _, k := range rec.Keys {
		b.WriteString(k.Key)
	}
	r.DTMF = b.String()
}
