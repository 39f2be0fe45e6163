package api

import (
	"context"
	_ "embed"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed gcra.lua
var gcraLua string

var gcraScript = redis.NewScript(gcraLua)

// rateLimiter is a GCRA limiter in Redis, shared by every API process.
type rateLimiter struct{ rdb redis.UniversalClient }

// allow takes one request from app's budget of rps requests per second
// (burst: the same number, at least 1). When refused it returns how long
// until a request would be allowed.
func (l rateLimiter) allow(ctx context.Context, app string, rps float64) (bool, time.Duration, error) {
	emissionUS := int64(1e6 / rps)
	burst := int64(math.Max(1, math.Floor(rps)))
	res, err := gcraScript.Run(ctx, l.rdb, []string{"vms:api:rate:{" + app + "}"}, emissionUS, burst).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}
