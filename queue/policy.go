package queue

import (
	"context"
	"fmt"
	"time"
)

// This file is the hook through which compliance policy (package policy:
// suppression, consent, frequency limits, quiet hours, banned words) sees
// every message, at enqueue and again right before dialing. queue does not
// import policy; Options.Policy is set by whoever builds the Client.

// Stage says when a policy check runs.
type Stage string

// Policy stages.
const (
	StageEnqueue Stage = "enqueue" // before anything is enqueued
	StageDial    Stage = "dial"    // in the worker, right before the call is claimed and dialled
)

// Verdict is what a policy decides about a message.
type Verdict int

// Verdicts.
const (
	Allow  Verdict = iota // send now
	Defer                 // send at Decision.NotBefore (quiet hours)
	Refuse                // never send: refused at enqueue, blocked in the worker
)

// Decision is a policy's answer. Code is a stable refusal code (blocked,
// frequency_limited, quiet_hours, no_consent, banned_word,
// template_not_approved); Reason says it in words, starting with the code,
// e.g. "frequency_limited: 2 calls in 10 min".
type Decision struct {
	Verdict   Verdict
	Code      string
	Reason    string
	NotBefore time.Time
}

// Policy decides whether a message may be sent. CheckSend counts a message
// it allows or defers against the number's frequency limits (idempotently:
// the same message ID is counted once); Release undoes that for a message
// that will not be called after all.
type Policy interface {
	CheckSend(ctx context.Context, m Message, stage Stage) (Decision, error)
	Release(ctx context.Context, m Message) error
	// NumberHash is the keyed hash that stands for a number where the
	// number itself must not be kept (CDRs).
	NumberHash(ctx context.Context, number string) (string, error)
}

// DeferError is returned by a worker's handler to run the task again at
// Until; the worker's asynq server turns it into the retry delay and does
// not count it as a failure.
type DeferError struct {
	Until  time.Time
	Reason string
}

func (e *DeferError) Error() string { return "deferred: " + e.Reason }

// admit runs the enqueue-time policy check on m. A refusal is an
// *InputError with the policy's code; a deferral sets m.NotBefore.
func (c *Client) admit(ctx context.Context, m *Message) (Decision, error) {
	if c.opts.Policy == nil {
		return Decision{Verdict: Allow}, nil
	}
	d, err := c.opts.Policy.CheckSend(ctx, *m, StageEnqueue)
	if err != nil {
		return d, fmt.Errorf("policy check of %s: %w", m.ID, err)
	}
	switch d.Verdict {
	case Refuse:
		return d, &InputError{Code: d.Code, Msg: d.Reason}
	case Defer:
		m.NotBefore = d.NotBefore.UTC()
	}
	return d, nil
}

// releasePolicy undoes the policy's count for a message that was not enqueued.
func (c *Client) releasePolicy(ctx context.Context, m Message) {
	if c.opts.Policy != nil {
		_ = c.opts.Policy.Release(ctx, m)
	}
}

// CheckBeforeDial repeats the policy checks in the worker, right before the
// message is claimed, since time has passed since enqueue. A refusal ends
// the message blocked with the reason (it is never dialled); a deferral
// leaves it queued with the reason and returns a *DeferError the handler
// returns to asynq. Allow returns nil.
func (c *Client) CheckBeforeDial(ctx context.Context, m Message) error {
	if c.opts.Policy == nil {
		return nil
	}
	d, err := c.opts.Policy.CheckSend(ctx, m, StageDial)
	if err != nil {
		return fmt.Errorf("policy check of %s: %w", m.ID, err)
	}
	switch d.Verdict {
	case Refuse:
		if err := c.Abandon(ctx, m.Key(), "", StatusBlocked, d.Reason); err != nil {
			return err
		}
		_ = c.opts.Policy.Release(ctx, m)
		return &InputError{Code: d.Code, Msg: d.Reason}
	case Defer:
		if _, err := c.Apply(ctx, endOp(m.Key(), []Status{StatusQueued}, StatusQueued, "", map[string]string{"reason": d.Reason})); err != nil {
			return err
		}
		return &DeferError{Until: d.NotBefore, Reason: d.Reason}
	}
	return nil
}
