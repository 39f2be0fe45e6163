package queue

import (
	"context"
	"time"
)

// This file is the worker's side of the state machine.

// ClaimOutcome says what a worker may do with a message it was handed.
type ClaimOutcome int

// Claim outcomes.
const (
	// Claimed: the record moved queued → dialing; this worker places the call.
	Claimed ClaimOutcome = iota
	// AlreadyFinished: the message is terminal; nothing to do.
	AlreadyFinished
	// LostInCall: a previous delivery had already dialled and its worker was
	// lost; the record is now unknown (unless its outcome was recorded) and
	// the number is never dialled again.
	LostInCall
)

// Claim atomically moves a message from queued to dialing for attempt.
// Every delivery of a task calls it first; only the delivery that gets
// Claimed may send an INVITE. Attempt A is claimed only from queued with
// attempt A-1 (attempts.go): a redelivered attempt never dials twice.
func (c *Client) Claim(ctx context.Context, id string, attempt int) (ClaimOutcome, *Record, error) {
	return c.claim(ctx, id, attempt)
}

// MarkInviteSent records when the INVITE left.
func (c *Client) MarkInviteSent(ctx context.Context, id string, at time.Time, trunk, callID string) error {
	_, _, err := c.store.transition(ctx, id, []Status{StatusDialing}, StatusDialing,
		map[string]string{"invite_at": formatTime(at), "trunk": trunk, "call_id": callID}, false)
	return err
}

// MarkRinging records the first provisional response (180/183).
func (c *Client) MarkRinging(ctx context.Context, id string, at time.Time) error {
	_, _, err := c.store.transition(ctx, id, []Status{StatusDialing}, StatusRinging,
		map[string]string{"ringing_at": formatTime(at)}, false)
	return err
}

// MarkAnswered records the 200 OK.
func (c *Client) MarkAnswered(ctx context.Context, id string, at time.Time) error {
	_, _, err := c.store.transition(ctx, id, []Status{StatusDialing, StatusRinging}, StatusAnswered,
		map[string]string{"answered_at": formatTime(at)}, false)
	return err
}

// Finish writes the outcome of a call and appends it to the CDR stream in
// one atomic step. It also replaces an unknown left by a redelivery, since
// the real outcome is better than none.
func (c *Client) Finish(ctx context.Context, r *Record) error {
	r.BillableMinutes = BillableMinutes(r.BillableMS)
	_, _, err := c.store.transition(ctx, r.ID, finishFrom, r.Status, resultFields(r), true)
	return err
}

// Abandon ends a message that never reached dialing (bad data found by the
// worker, policy refusal): queued or dialing → status, with the reason.
func (c *Client) Abandon(ctx context.Context, id string, status Status, reason string) error {
	_, _, err := c.store.transition(ctx, id, []Status{StatusQueued, StatusDialing}, status,
		map[string]string{"reason": reason}, false)
	return err
}

// CDRs returns up to count CDRs from the stream, oldest first, starting
// after the stream ID after ("" for the beginning).
func (c *Client) CDRs(ctx context.Context, after string, count int64) ([]CDR, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := c.rdb.XRangeN(ctx, cdrStream, start, "+", count).Result()
	if err != nil {
		return nil, err
	}
	out := make([]CDR, 0, len(msgs))
	for _, m := range msgs {
		f := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			f[k] = str(v)
		}
		r, err := recordFromFields(f)
		if err != nil {
			return nil, err
		}
		out = append(out, CDR{StreamID: m.ID, Record: *r})
	}
	return out, nil
}

// CDR is one entry of the CDR stream: the record as it was when the call ended.
type CDR struct {
	StreamID string `json:"stream_id"`
	Record
}

func isIn(s Status, set []Status) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}
