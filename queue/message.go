// Package queue is the Redis-side contract of vms: the messages upstream
// systems enqueue, their records and state machine, and the CDR stream.
// Upstream Go code imports it and uses Client; the Redis scripts and key
// layout stay unexported here.
package queue

import (
	"time"
)

// Kind is what a message says.
type Kind string

// Message kinds.
const (
	KindCode Kind = "code" // a verification code, spoken digit by digit
	KindTTS  Kind = "tts"  // a template notification
)

// Message is one "call this number and speak this" job. It is the payload of
// the asynq task whose TaskID is ID.
type Message struct {
	ID         string    `json:"id"`
	Kind       Kind      `json:"kind"`
	To         string    `json:"to"`
	Code       string    `json:"code,omitempty"`
	Language   string    `json:"language,omitempty"`
	TemplateID string    `json:"template_id,omitempty"`
	Params     []string  `json:"params,omitempty"`
	PlayTimes  int       `json:"play_times"`
	EnqueuedAt time.Time `json:"enqueued_at"`
	// NotBefore is set when policy deferred the message (quiet hours): it
	// is not dialled before then.
	NotBefore time.Time `json:"not_before,omitzero"`
	// AppID is the upstream app that sent the message (DefaultApp when
	// sent without one); SessionContext is echoed back in its callbacks;
	// CallbackURL overrides the app's configured callback URL.
	AppID          string `json:"app_id"`
	SessionContext string `json:"session_context,omitempty"`
	CallbackURL    string `json:"callback_url,omitempty"`
}

// Key is the message's key inside vms: message IDs are scoped per app, so
// the same ID sent by two apps is two messages. A message of DefaultApp
// keeps its ID as its key; another app's is "app/id" ('/' appears in
// neither app nor message IDs). A Message with no AppID is read as having
// its key in ID already (what the reaper knows of a call).
func (m Message) Key() string { return Key(m.AppID, m.ID) }

// Key is the key of message id of app.
func Key(app, id string) string {
	if app == "" || app == DefaultApp {
		return id
	}
	return app + "/" + id
}

// Status is the state of a message record.
//
//	queued → dialing → ringing → answered → completed
//
// or one of the terminal failures. Entering dialing is an atomic
// compare-and-set, which makes a call at-most-once although asynq delivers
// tasks at-least-once.
type Status string

// Message states.
const (
	StatusQueued        Status = "queued"         // accepted, waiting for a worker
	StatusDialing       Status = "dialing"        // a worker owns it and sent (or is sending) the INVITE
	StatusRinging       Status = "ringing"        // the carrier reported 180/183
	StatusAnswered      Status = "answered"       // the callee picked up; audio is playing
	StatusCompleted     Status = "completed"      // answered and hung up normally
	StatusBusy          Status = "busy"           // 486/600
	StatusNoAnswer      Status = "no_answer"      // ring timeout, 480, 408
	StatusRejected      Status = "rejected"       // 603 decline or another 4xx/6xx refusal
	StatusInvalidNumber Status = "invalid_number" // 404, 484, 410
	StatusUnreachable   Status = "unreachable"    // 5xx, no response, transport error
	StatusFailed        Status = "failed"         // our side failed: audio, config, no common codec, auth
	StatusCanceled      Status = "canceled"       // canceled before dialing
	StatusBlocked       Status = "blocked"        // refused by policy
	StatusUnknown       Status = "unknown"        // the worker died before its INVITE was recorded; never redialled
	StatusMediaTimeout  Status = "media_timeout"  // answered, then no RTP from the callee for call.media_timeout
	StatusInterrupted   Status = "interrupted"    // answered or ringing, then hung up by another worker after its worker died
)

// Terminal reports whether no further state follows. StatusUnknown is
// terminal for the caller, though a late real outcome may still replace it.
func (s Status) Terminal() bool {
	switch s {
	case StatusQueued, StatusDialing, StatusRinging, StatusAnswered:
		return false
	}
	return true
}

// Record is what Redis holds for a message: the message, its state and the
// outcome of the call.
type Record struct {
	Message
	Status  Status `json:"status"`
	Attempt int    `json:"attempt"`
	// Reason says why a message ended as it did, in words an operator can act on.
	Reason      string `json:"reason,omitempty"`
	Trunk       string `json:"trunk,omitempty"`
	CallID      string `json:"call_id,omitempty"`
	Codec       string `json:"codec,omitempty"`
	SIPCode     int    `json:"sip_code,omitempty"`
	SIPReason   string `json:"sip_reason,omitempty"`
	HungUpBy    string `json:"hung_up_by,omitempty"` // caller (vms), callee, or empty
	PlayedToEnd bool   `json:"played_to_end"`
	// AudioMS is the length of the message as played (all repetitions).
	AudioMS         int64     `json:"audio_ms,omitempty"`
	InviteAt        time.Time `json:"invite_at,omitzero"`
	RingingAt       time.Time `json:"ringing_at,omitzero"`
	AnsweredAt      time.Time `json:"answered_at,omitzero"`
	EndedAt         time.Time `json:"ended_at,omitzero"`
	BillableMS      int64     `json:"billable_ms"`
	BillableMinutes int       `json:"billable_minutes"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
	// Keys are the DTMF keys the callee pressed, in order.
	Keys []KeyPress `json:"keys,omitempty"`
	// Confirmed: the callee pressed the template's confirm key.
	Confirmed bool `json:"confirmed,omitempty"`
	// OptedOut: the callee pressed the template's opt-out key.
	OptedOut bool `json:"opted_out,omitempty"`
	// Attempts lists every INVITE placed for the message (failover and
	// redials), oldest first; filled by Client.Get.
	Attempts []Attempt `json:"attempts,omitempty"`
	// Callbacks is the delivery state of each status callback, by event
	// (ringing, answered, final...): see callback_state.go.
	Callbacks map[string]CallbackState `json:"callbacks,omitempty"`
}

// BillableMinutes is ceil(ms / 60000): any answered call of at least one
// millisecond bills one minute; an unanswered call bills nothing.
func BillableMinutes(ms int64) int {
	if ms <= 0 {
		return 0
	}
	return int((ms + 59999) / 60000)
}

// Event is one state change of a message.
type Event struct {
	MessageID string    `json:"message_id"`
	Status    Status    `json:"status"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`
	SIPCode   int       `json:"sip_code,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// KeyPress is one DTMF key the callee pressed.
type KeyPress struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
	// Via is how it arrived: rfc4733 (RTP telephone-event) or info (SIP INFO).
	Via string `json:"via"`
}
