package queue

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// This file holds attempts: a message is dialled as attempt 1 and, when the
// redial policy of its kind allows, again as attempts 2, 3..., each a new
// asynq task. Every INVITE of an attempt (one per trunk tried) is appended to
// the message's attempts list with its own outcome.
//
// The record's attempt field is the CAS guard: attempt A may be claimed only
// when the record is queued with attempt A-1, and a record goes back to
// queued only when attempt A-1 ended with a redialable status and a redial
// was scheduled in the same atomic step. A redelivered task of attempt A
// therefore never dials twice, and a late redelivery of attempt A-1 never
// dials at all.

// AttemptNotDue is a claim outcome: the previous attempt is still in its call
// (a redial task ran before the previous attempt was recorded). The task
// should be retried later.
const AttemptNotDue = LostInCall + 1

// Attempt is one INVITE placed for a message: which attempt and which trunk
// try it was, and how it ended.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	Try        int       `json:"try"`
	Trunk      string    `json:"trunk"`
	CallID     string    `json:"call_id,omitempty"`
	Status     Status    `json:"status"`
	SIPCode    int       `json:"sip_code,omitempty"`
	SIPReason  string    `json:"sip_reason,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	InviteAt   time.Time `json:"invite_at,omitzero"`
	RingingAt  time.Time `json:"ringing_at,omitzero"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	BillableMS int64     `json:"billable_ms"`
}

// NextAttempt schedules a redial: attempt number Attempt at At.
type NextAttempt struct {
	Attempt int
	At      time.Time
	// Reason says why, for the record while it waits ("busy; redial 2 of 3").
	Reason string
}

func attemptsKey(id string) string { return keyPrefix + "msg:{" + id + "}:attempts" }

//go:embed attempts.lua
var attemptsLua string

var attemptsScript = redis.NewScript(attemptsLua)

const lostReason = "the worker handling this call stopped before recording its outcome; not dialled again"

// claim is Claim with the attempt guard (see the file comment).
func (c *Client) claim(ctx context.Context, id string, attempt int) (ClaimOutcome, *Record, error) {
	if attempt < 1 {
		return 0, nil, fmt.Errorf("message %s: claim attempt %d: attempts start at 1", id, attempt)
	}
	s := &c.store
	res, err := attemptsScript.Run(ctx, s.rdb, []string{recordKey(id), eventsKey(id), cdrStream},
		"claim", attempt, s.retention.Milliseconds(), formatTime(time.Now()), eventsMaxLen, cdrMaxLen, lostReason).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("message %s: claim attempt %d: %w", id, attempt, err)
	}
	code, _ := res[0].(int64)
	if code < 0 {
		return 0, nil, fmt.Errorf("message %q: %w", id, ErrNotFound)
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	switch code {
	case 0:
		return Claimed, rec, nil
	case 2:
		return LostInCall, rec, nil
	case 3:
		return AttemptNotDue, rec, nil
	}
	return AlreadyFinished, rec, nil
}

// FinishAttempt writes the outcome of attempt r.Attempt, appends tries (every
// INVITE of the attempt, in order) to the attempts list and the record to the
// CDR stream, all in one atomic step. With next, the record then goes back
// to queued for that attempt (whose task the caller has already enqueued
// with EnqueueRedial); otherwise it keeps r.Status. It fails when the record
// is not in a call of attempt r.Attempt.
func (c *Client) FinishAttempt(ctx context.Context, r *Record, tries []Attempt, next *NextAttempt) error {
	r.BillableMinutes = BillableMinutes(r.BillableMS)
	s := &c.store
	now := time.Now()
	nextN, nextReason := 0, ""
	if next != nil {
		nextN, nextReason = next.Attempt, next.Reason
	}
	args := []any{"finish", r.Attempt, s.retention.Milliseconds(), formatTime(now), eventsMaxLen, cdrMaxLen,
		string(r.Status), nextN, nextReason, len(tries)}
	for _, a := range tries {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		args = append(args, string(b))
	}
	f := resultFields(r)
	f["updated_at"] = formatTime(now)
	if next != nil {
		f["redial_at"] = formatTime(next.At)
	}
	for k, v := range f {
		args = append(args, k, v)
	}
	res, err := attemptsScript.Run(ctx, s.rdb, []string{recordKey(r.ID), eventsKey(r.ID), cdrStream, attemptsKey(r.ID)}, args...).Slice()
	if err != nil {
		return fmt.Errorf("message %s: record attempt %d: %w", r.ID, r.Attempt, err)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		prev, _ := res[1].(string)
		if prev == "" {
			return fmt.Errorf("message %q: %w", r.ID, ErrNotFound)
		}
		return fmt.Errorf("message %s: record attempt %d: the record is %s, not in a call of that attempt", r.ID, r.Attempt, prev)
	}
	return nil
}

// Attempts returns every INVITE placed for a message, oldest first.
func (c *Client) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	raw, err := c.rdb.LRange(ctx, attemptsKey(id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Attempt, 0, len(raw))
	for _, s := range raw {
		var a Attempt
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			return nil, fmt.Errorf("message %s: corrupt attempt entry: %w", id, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// taskPayload is the asynq payload of a send task: the message and, for a
// redial, its attempt number (absent means 1).
type taskPayload struct {
	Message
	Attempt int `json:"attempt,omitempty"`
}

// DecodeTask reads a send task's payload: the message and the attempt the
// task dials.
func DecodeTask(payload []byte) (Message, int, error) {
	var p taskPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Message{}, 0, err
	}
	if p.Attempt < 1 {
		p.Attempt = 1
	}
	return p.Message, p.Attempt, nil
}

// RedialTaskID is the asynq TaskID of attempt n of a message. '#' never
// appears in message IDs, so it cannot collide with a first attempt's ID.
func RedialTaskID(id string, n int) string { return id + "#" + strconv.Itoa(n) }

// EnqueueRedial enqueues the task of attempt n (n >= 2) to run at at.
// Enqueueing the same attempt twice is not an error and makes one task.
func (c *Client) EnqueueRedial(ctx context.Context, m Message, n int, at time.Time) error {
	if n < 2 {
		return fmt.Errorf("message %s: redial attempt %d: redials are attempts 2 and up", m.ID, n)
	}
	payload, err := json.Marshal(taskPayload{Message: m, Attempt: n})
	if err != nil {
		return err
	}
	q := QueueNotify
	if m.Kind == KindCode {
		q = QueueCode
	}
	_, err = c.aq.EnqueueContext(ctx, asynq.NewTask(TaskSend, payload),
		asynq.TaskID(RedialTaskID(m.ID, n)), asynq.Queue(q), asynq.MaxRetry(3), asynq.ProcessAt(at),
		asynq.Timeout(c.opts.TaskTimeout), asynq.Retention(c.opts.Retention))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("message %s: enqueue redial %d: %w", m.ID, n, err)
	}
	return nil
}
