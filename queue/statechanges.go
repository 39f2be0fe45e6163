package queue

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The outbox: state.lua appends every event of every message to its
// shard's outbox stream in the same atomic step as the change itself, so a
// change can never be recorded without its entry. A consumer group reading
// all shards (the callback relay) sees each change at least once, even
// across crashes of any process.

// StateChange is one entry of the outbox.
type StateChange struct {
	// StreamID is "<entry id>/<shard>": acknowledge with it.
	StreamID  string
	MessageID string
	Status    Status
	Attempt   int
	At        time.Time
	// Outcome holds, for an attempt's final status, the attempt's outcome
	// as recorded in the same step (status and outcome fields only): the
	// record may have moved on (a redial) by the time the entry is read.
	// For other changes it holds what the event carried (times, reason).
	Outcome Record
}

// ReadStateChanges reads outbox entries for consumer of group (created on
// first use, from the start of each shard). It first returns entries other
// consumers of the group read but did not acknowledge within minIdle (a
// relay that died), then new ones; when there are none it waits up to
// block. Acknowledge each entry with AckStateChanges once it is handled.
func (c *Client) ReadStateChanges(ctx context.Context, group, consumer string, count int64, block, minIdle time.Duration) ([]StateChange, error) {
	if _, ok := c.groups.Load(group); !ok {
		for s := range shards {
			err := c.rdb.XGroupCreateMkStream(ctx, outboxKey(s), group, "0").Err()
			if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
				return nil, err
			}
		}
		c.groups.Store(group, true)
	}
	deadline := time.Now().Add(block)
	for {
		// One round trip per node for all shards: an idle relay costs a
		// few calls per second, not a few per shard.
		pipe := c.rdb.Pipeline()
		claims := make([]*redis.XAutoClaimCmd, shards)
		reads := make([]*redis.XStreamSliceCmd, shards)
		for s := range shards {
			claims[s] = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: outboxKey(s), Group: group,
				Consumer: consumer, MinIdle: minIdle, Start: "0-0", Count: count})
			reads[s] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
				Streams: []string{outboxKey(s), ">"}, Count: count, Block: -1})
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			if strings.Contains(err.Error(), "NOGROUP") {
				c.groups.Delete(group) // the outbox was lost: make the group again
			}
			return nil, err
		}
		var out []StateChange
		for s := range shards {
			if claimed, _, err := claims[s].Result(); err == nil {
				out = append(out, stateChanges(s, claimed)...)
			}
			res, _ := reads[s].Result()
			for _, st := range res {
				out = append(out, stateChanges(s, st.Messages)...)
			}
		}
		if len(out) > 0 || !time.Now().Before(deadline) {
			return out, nil
		}
		t := time.NewTimer(min(100*time.Millisecond, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// AckStateChanges marks outbox entries (by StreamID) as handled by group.
func (c *Client) AckStateChanges(ctx context.Context, group string, streamIDs ...string) error {
	for _, sid := range streamIDs {
		id, shard, ok := strings.Cut(sid, "/")
		s, err := strconv.Atoi(shard)
		if !ok || err != nil || s < 0 || s >= shards {
			return errors.New("outbox: malformed stream id " + strconv.Quote(sid))
		}
		if err := c.rdb.XAck(ctx, outboxKey(s), group, id).Err(); err != nil {
			return err
		}
	}
	return nil
}

func stateChanges(shard int, msgs []redis.XMessage) []StateChange {
	out := make([]StateChange, 0, len(msgs))
	for _, m := range msgs {
		f := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			f[k] = str(v)
		}
		sc := StateChange{StreamID: m.ID + "/" + strconv.Itoa(shard), MessageID: f["message_id"],
			Status: Status(f["status"]), At: parseTime(f["at"])}
		sc.Attempt, _ = strconv.Atoi(f["attempt"])
		// A corrupt keys field leaves Keys empty; the rest still reports.
		_ = outcomeFromFields(f, &sc.Outcome)
		sc.Outcome.Attempt = sc.Attempt
		out = append(out, sc)
	}
	return out
}
