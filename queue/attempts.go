package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
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

// taskPayload is the asynq payload of a send task: the message's ID and
// the attempt the task dials (absent means 1). The worker reads everything
// else from the record, so nothing of the message (the number, a code)
// lingers in asynq's copy of the task.
type taskPayload struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt,omitempty"`
}

func encodeTask(id string, attempt int) []byte {
	b, _ := json.Marshal(taskPayload{ID: id, Attempt: attempt})
	return b
}

// DecodeTask reads a send task's payload: the message ID and the attempt
// the task dials.
func DecodeTask(payload []byte) (id string, attempt int, err error) {
	var p taskPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", 0, err
	}
	if p.ID == "" {
		return "", 0, errors.New("no message id")
	}
	return p.ID, max(p.Attempt, 1), nil
}

// EnqueueRedial enqueues the task of attempt n (n >= 2) to run at at.
// Enqueueing the same attempt twice is not an error and makes one task.
func (c *Client) EnqueueRedial(ctx context.Context, m Message, n int, at time.Time) error {
	if n < 2 {
		return fmt.Errorf("message %s: redial attempt %d: redials are attempts 2 and up", m.ID, n)
	}
	_, err := c.aq.EnqueueContext(ctx, asynq.NewTask(TaskSend, encodeTask(m.Key(), n)),
		asynq.TaskID(taskID(m.Key(), n)), asynq.Queue(queueOf(m.Kind)), asynq.MaxRetry(3), asynq.ProcessAt(at),
		asynq.Timeout(c.opts.TaskTimeout), asynq.Retention(c.opts.Retention))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("message %s: enqueue redial %d: %w", m.ID, n, err)
	}
	return nil
}
