package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sweep enqueues the task of every queued record created more than
// olderThan ago whose task is not known to exist: a sender that crashed, or
// lost Redis's reply, between creating the record and enqueueing its task.
// Enqueueing is idempotent (the task ID is the message's), so sweepers on
// every worker may race. It returns how many records it looked at.
func (c *Client) Sweep(ctx context.Context, olderThan time.Duration) (int, error) {
	maxScore := strconv.FormatInt(time.Now().Add(-olderThan).UnixMilli(), 10)
	n := 0
	for s := range shards {
		ids, err := c.rdb.ZRangeByScore(ctx, unqueuedKey(s), &redis.ZRangeBy{Min: "-inf", Max: maxScore, Count: 100}).Result()
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			n++
			rec, err := c.store.get(ctx, id)
			if errors.Is(err, ErrNotFound) {
				c.rdb.ZRem(ctx, unqueuedKey(s), id)
				continue
			} else if err != nil {
				return n, err
			}
			if rec.Status != StatusQueued {
				if _, err := c.Apply(ctx, newOp("enqueued", id)); err != nil {
					return n, err
				}
				continue
			}
			if err := c.enqueueTask(ctx, rec.Message, rec.Attempt+1); err != nil {
				return n, fmt.Errorf("sweep %s: %w", id, err)
			}
		}
	}
	return n, nil
}
