package policy

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit allows at most Max calls to one number (per app) within Window.
type Limit struct {
	Max    int
	Window time.Duration
}

//go:embed frequency.lua
var frequencyLua string

var frequencyScript = redis.NewScript(frequencyLua)

func frequencyKey(app, hash string) string { return "vms:freq:{" + app + "}:" + hash }

// freqResult is the outcome of a frequency check.
type freqResult struct {
	ok    bool
	limit Limit
	count int
	// retryAt is when the window that refused frees up.
	retryAt time.Time
}

// checkFrequency checks (and with record, counts) a call at time at for
// message id. The same message ID is counted once; recording it again
// moves it to at.
func (e *Engine) checkFrequency(ctx context.Context, app, hash, id string, at time.Time, limits []Limit, record bool) (freqResult, error) {
	if len(limits) == 0 {
		return freqResult{ok: true}, nil
	}
	args := []any{at.UnixMilli(), e.now().UnixMilli(), id, "0"}
	if record {
		args[3] = "1"
	}
	for _, l := range limits {
		args = append(args, l.Window.Milliseconds(), l.Max)
	}
	res, err := frequencyScript.Run(ctx, e.rdb, []string{frequencyKey(app, hash)}, args...).Slice()
	if err != nil {
		return freqResult{}, fmt.Errorf("frequency limits: %w", err)
	}
	if res[0].(int64) == 1 {
		return freqResult{ok: true}, nil
	}
	l := limits[res[1].(int64)-1]
	first, _ := strconv.ParseInt(fmt.Sprint(res[3]), 10, 64)
	return freqResult{limit: l, count: int(res[2].(int64)), retryAt: time.UnixMilli(first).Add(l.Window)}, nil
}

// release forgets a message's call (it will not be made).
func (e *Engine) releaseFrequency(ctx context.Context, app, hash, id string) error {
	return e.rdb.ZRem(ctx, frequencyKey(app, hash), id).Err()
}

// FormatWindow writes a window as people say it: 30 s, 10 min, 24 h.
func FormatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}
