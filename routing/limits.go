package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the limits every worker sharing one Redis enforces
// together: a channel semaphore and a calls-per-second limiter per trunk.
// Both scripts read the clock from Redis TIME, so workers with skewed clocks
// still agree.

// semAcquireScript takes a channel slot.
// KEYS[1] the trunk's slot set (member: message ID, score: lease expiry ms)
// ARGV[1] max channels, ARGV[2] lease ms, ARGV[3] member
// Returns 0 when the slot is held (new, or already this member's: a retry
// never takes two), else the ms until the earliest lease expires.
var semAcquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(first[2]) - now
if wait < 1 then wait = 1 end
return wait
`)

// semRenewScript extends a held slot's lease. Returns 1, or 0 when the slot
// was lost (its lease ran out and it was taken back).
var semRenewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
`)

// gcraScript is the generic cell rate algorithm: one call per emission
// interval, with a burst tolerance.
// KEYS[1] the trunk's theoretical arrival time (µs)
// ARGV[1] emission interval µs, ARGV[2] burst (>= 1)
// Returns 0 when the call may go now (and takes its token), else the µs to wait.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if now < tat - tolerance then
  return tat - tolerance - now
end
local nt = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nt), 'PX', math.ceil((nt - now) / 1000) + 1000)
return 0
`)

func slotsKey(trunk string) string { return "vms:trunk:{" + trunk + "}:channels" }
func cpsKey(trunk string) string   { return "vms:trunk:{" + trunk + "}:cps" }

// Limits enforces max_channels and cps of trunks across workers.
type Limits struct {
	rdb   redis.UniversalClient
	lease time.Duration
	log   *slog.Logger
}

// NewLimits returns Limits on rdb with the given channel lease.
func NewLimits(rdb redis.UniversalClient, lease time.Duration, log *slog.Logger) *Limits {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limits{rdb: rdb, lease: lease, log: log}
}

// SaturatedError says a trunk had no free channel or calls-per-second token
// within the wait. RetryAfter is when one is expected.
type SaturatedError struct {
	Trunk      string
	What       string // "channels" or "calls per second"
	RetryAfter time.Duration
}

func (e *SaturatedError) Error() string {
	return fmt.Sprintf("trunk %s is saturated (%s): retry in %s", e.Trunk, e.What, e.RetryAfter.Round(time.Millisecond))
}

// IsSaturated reports whether err is (or wraps) a *SaturatedError and returns it.
func IsSaturated(err error) (*SaturatedError, bool) {
	var s *SaturatedError
	return s, errors.As(err, &s)
}

// Slot is a held channel slot; its lease is renewed until Release.
type Slot struct {
	l      *Limits
	trunk  string
	member string
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Acquire takes a channel slot of trunk t for member (unique per delivery
// of a message: a duplicate delivery must never free the winner's slot) and a
// calls-per-second token, waiting up to wait for both without spinning: it
// sleeps for the limiter's retry-after, and polls the semaphore with a
// jittered backoff bounded by the earliest lease expiry. On success the slot
// is renewed in the background until Release. When wait runs out it returns
// a *SaturatedError and holds nothing.
func (l *Limits) Acquire(ctx context.Context, t *Trunk, member string, wait time.Duration) (*Slot, error) {
	deadline := time.Now().Add(wait)
	s := &Slot{l: l, trunk: t.Name, member: member}
	if t.MaxChannels > 0 {
		backoff := 20 * time.Millisecond
		for {
			ms, err := semAcquireScript.Run(ctx, l.rdb, []string{slotsKey(t.Name)}, t.MaxChannels, l.lease.Milliseconds(), member).Int64()
			if err != nil {
				return nil, fmt.Errorf("trunk %s: take a channel slot: %w", t.Name, err)
			}
			if ms == 0 {
				break
			}
			hint := time.Duration(ms) * time.Millisecond
			if err := sleepUntil(ctx, deadline, min(backoff, hint)); err != nil {
				return nil, saturated(err, t.Name, "channels", min(backoff, hint))
			}
			backoff = min(2*backoff, 200*time.Millisecond)
		}
	}
	if t.CPS > 0 {
		interval := time.Duration(float64(time.Second) / t.CPS)
		for {
			us, err := gcraScript.Run(ctx, l.rdb, []string{cpsKey(t.Name)}, interval.Microseconds(), 1).Int64()
			if err != nil {
				s.release()
				return nil, fmt.Errorf("trunk %s: take a calls-per-second token: %w", t.Name, err)
			}
			if us == 0 {
				break
			}
			after := time.Duration(us) * time.Microsecond
			if err := sleepUntil(ctx, deadline, after); err != nil {
				s.release()
				return nil, saturated(err, t.Name, "calls per second", after)
			}
		}
	}
	if t.MaxChannels > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.renew()
	}
	return s, nil
}

var errWaitOver = errors.New("wait over")

// sleepUntil sleeps d (with up to 10% jitter, so waiting workers do not
// return in lockstep) unless that passes deadline or ctx ends.
func sleepUntil(ctx context.Context, deadline time.Time, d time.Duration) error {
	d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	if time.Now().Add(d).After(deadline) {
		return errWaitOver
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func saturated(err error, trunk, what string, after time.Duration) error {
	if errors.Is(err, errWaitOver) {
		return &SaturatedError{Trunk: trunk, What: what, RetryAfter: max(after, 100*time.Millisecond)}
	}
	return err
}

// renew extends the lease at a third of its length until Release.
func (s *Slot) renew() {
	defer close(s.done)
	tk := time.NewTicker(s.l.lease / 3)
	defer tk.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tk.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.l.lease/3)
			ok, err := semRenewScript.Run(ctx, s.l.rdb, []string{slotsKey(s.trunk)}, s.l.lease.Milliseconds(), s.member).Int()
			cancel()
			if err != nil {
				s.l.log.Warn("renew channel slot", "trunk", s.trunk, "message_id", s.member, "err", err)
			} else if ok == 0 {
				s.l.log.Warn("channel slot lease ran out while the call was up; the trunk may briefly take one call too many",
					"trunk", s.trunk, "message_id", s.member)
			}
		}
	}
}

// Release stops renewing and frees the slot. It is safe to call more than once.
func (s *Slot) Release() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.release()
	})
}

func (s *Slot) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.l.rdb.ZRem(ctx, slotsKey(s.trunk), s.member).Err(); err != nil {
		s.l.log.Warn("release channel slot; it frees itself when its lease ends", "trunk", s.trunk, "err", err)
	}
}

// Member is the semaphore member that holds the slot: what a worker that
// takes over a dead worker's call releases with ReleaseMember.
func (s *Slot) Member() string { return s.member }

// ReleaseMember frees the channel slot member holds on trunk (a dead
// worker's, whose call was ended by another worker).
func (l *Limits) ReleaseMember(ctx context.Context, trunk, member string) error {
	return l.rdb.ZRem(ctx, slotsKey(trunk), member).Err()
}

// InUse returns how many channel slots of a trunk are held now.
func (l *Limits) InUse(ctx context.Context, trunk string) (int, error) {
	now, err := l.rdb.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	n, err := l.rdb.ZCount(ctx, slotsKey(trunk), fmt.Sprint(now.UnixMilli()+1), "+inf").Result()
	return int(n), err
}
