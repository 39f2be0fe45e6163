package queue

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// stateChangeStream is the outbox of every state change of every message
// (after queued). transition.lua appends to it in the same atomic step as
// the change itself, so a change can never be recorded without its entry:
// a consumer group reading it (the callback relay) sees each change at
// least once even across crashes of any process.
const stateChangeStream = keyPrefix + "statechanges"

// StateChange is one entry of the state-change outbox.
type StateChange struct {
	StreamID  string
	MessageID string
	Status    Status
	Attempt   int
	At        time.Time
}

// ReadStateChanges reads state changes for consumer of group (created on
// first use, from the start of the stream). It first returns entries other
// consumers of the group read but did not acknowledge within minIdle (a
// relay that died), then new ones, blocking up to block. Acknowledge each
// entry with AckStateChanges once it is handled.
func (c *Client) ReadStateChanges(ctx context.Context, group, consumer string, count int64, block, minIdle time.Duration) ([]StateChange, error) {
	err := c.rdb.XGroupCreateMkStream(ctx, stateChangeStream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return nil, err
	}
	claimed, _, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stateChangeStream, Group: group,
		Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: count}).Result()
	if err != nil {
		return nil, err
	}
	if len(claimed) > 0 {
		return stateChanges(claimed), nil
	}
	res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
		Streams: []string{stateChangeStream, ">"}, Count: count, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []StateChange
	for _, s := range res {
		out = append(out, stateChanges(s.Messages)...)
	}
	return out, nil
}

// AckStateChanges marks state changes as handled by group.
func (c *Client) AckStateChanges(ctx context.Context, group string, streamIDs ...string) error {
	if len(streamIDs) == 0 {
		return nil
	}
	return c.rdb.XAck(ctx, stateChangeStream, group, streamIDs...).Err()
}

func stateChanges(msgs []redis.XMessage) []StateChange {
	out := make([]StateChange, 0, len(msgs))
	for _, m := range msgs {
		sc := StateChange{StreamID: m.ID, MessageID: str(m.Values["message_id"]),
			Status: Status(str(m.Values["status"])), At: parseTime(str(m.Values["at"]))}
		sc.Attempt, _ = strconv.Atoi(str(m.Values["attempt"]))
		out = append(out, sc)
	}
	return out
}
