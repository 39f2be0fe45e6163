package routing

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file keeps trunk health in Redis, shared by every worker: K
// carrier-side failures in a row mark a trunk down for a cool-off; after it,
// the trunk is probed with SIP OPTIONS and takes calls again only when the
// probe is answered.

func healthKey(trunk string) string { return "vms:trunk:{" + trunk + "}:health" }
func probeKey(trunk string) string  { return "vms:trunk:{" + trunk + "}:probe" }

// failureScript counts a carrier-side failure.
// ARGV[1] threshold, ARGV[2] cool-off ms. Returns 1 when this failure marked
// the trunk down.
var failureScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
if redis.call('HGET', KEYS[1], 'state') ~= 'down' and fails >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'down', 'down_at', now, 'probe_at', now + tonumber(ARGV[2]))
  return 1
end
return 0
`)

// probeDueScript claims the probe of a down trunk whose cool-off is over, so
// one worker probes it. ARGV[1] lock ms. Returns 1 when this caller probes.
var probeDueScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[1], 'state') ~= 'down' then return 0 end
if now < tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0') then return 0 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
return 1
`)

// probeResultScript ends a probe: ARGV[1] "1" when answered (the trunk is
// up again), else the cool-off restarts (ARGV[2] ms).
var probeResultScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'state', 'up', 'fails', 0)
else
  redis.call('HSET', KEYS[1], 'probe_at', now + tonumber(ARGV[2]))
end
redis.call('DEL', KEYS[2])
return 1
`)

// Health tracks whether trunks may take calls.
type Health struct {
	rdb       redis.UniversalClient
	threshold int
	cooloff   time.Duration
}

// NewHealth returns trunk health on rdb: threshold failures in a row mark a
// trunk down for cooloff.
func NewHealth(rdb redis.UniversalClient, threshold int, cooloff time.Duration) *Health {
	return &Health{rdb: rdb, threshold: threshold, cooloff: cooloff}
}

// Failure counts a carrier-side failure of trunk; it reports whether this
// failure marked the trunk down.
func (h *Health) Failure(ctx context.Context, trunk string) (bool, error) {
	n, err := failureScript.Run(ctx, h.rdb, []string{healthKey(trunk)}, h.threshold, h.cooloff.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("trunk %s: count failure: %w", trunk, err)
	}
	return n == 1, nil
}

// Success resets the trunk's run of failures. A trunk marked down stays down
// until a probe is answered.
func (h *Health) Success(ctx context.Context, trunk string) error {
	return h.rdb.HSet(ctx, healthKey(trunk), "fails", 0).Err()
}

// Down returns which of the trunks are down (cooling off or waiting for a
// successful probe).
func (h *Health) Down(ctx context.Context, trunks []string) (map[string]bool, error) {
	pipe := h.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(trunks))
	for i, t := range trunks {
		cmds[i] = pipe.HGet(ctx, healthKey(t), "state")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read trunk health: %w", err)
	}
	down := map[string]bool{}
	for i, c := range cmds {
		if c.Val() == "down" {
			down[trunks[i]] = true
		}
	}
	return down, nil
}

// claimProbe reports whether this caller should probe trunk now.
func (h *Health) claimProbe(ctx context.Context, trunk string, lock time.Duration) (bool, error) {
	n, err := probeDueScript.Run(ctx, h.rdb, []string{healthKey(trunk), probeKey(trunk)}, lock.Milliseconds()).Int()
	return n == 1, err
}

// probed records a probe's result.
func (h *Health) probed(ctx context.Context, trunk string, ok bool) error {
	v := "0"
	if ok {
		v = "1"
	}
	return probeResultScript.Run(ctx, h.rdb, []string{healthKey(trunk), probeKey(trunk)}, v, h.cooloff.Milliseconds()).Err()
}
