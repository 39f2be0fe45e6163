package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
)

// ErrNotCancelable is returned (wrapped) by Cancel when the message has left
// the queue: a worker is dialing it, or it has ended.
var ErrNotCancelable = errors.New("message can no longer be canceled")

// Cancel moves a queued message to canceled atomically and deletes its
// asynq task. Once a worker has claimed the message (dialing or later) it
// refuses with an error wrapping ErrNotCancelable and the record as it is.
// Canceling a message that is already canceled succeeds. Should the task be
// running at that moment, the worker finds the record canceled and does not
// dial.
func (c *Client) Cancel(ctx context.Context, id string) (*Record, error) {
	res, err := c.Apply(ctx, endOp(id, []Status{StatusQueued}, StatusCanceled, "",
		map[string]string{"reason": "canceled by the sender before dialing"}))
	if err != nil {
		return nil, err
	}
	prev, moved := res.Prev, res.Applied
	rec, err := c.store.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !moved && prev != StatusCanceled {
		return rec, fmt.Errorf("message %s is %s: %w", id, prev, ErrNotCancelable)
	}
	// The record saying canceled is what stops the call; deleting the task
	// only spares a worker the pick-up. It fails harmlessly when a worker
	// is running it right now (the worker sees canceled and does not dial).
	_ = asynq.NewInspectorFromRedisClient(c.rdb).DeleteTask(queueOf(rec.Kind), taskID(id, rec.Attempt+1))
	return rec, nil
}
