package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Durability is what must hold of a claim before its INVITE may leave:
// Redis losing its last writes (a restart without AOF, appendfsync
// everysec and a crash, a failover to a replica that lacks them) must
// never bring back a queued record of a message already dialled.
type Durability struct {
	// Mode is "aof", "replica" or "none" (config.Redis.Durability).
	Mode    string
	Timeout time.Duration
	// wait is the command run after the claim on the same connection:
	// WAIT (replica) or WAITAOF (aof on Redis >= 7.2 without fsync always).
	wait []any
}

// ErrNotDurable is returned (wrapped) when a claim was not confirmed
// durable within the timeout; the message was put back in the queue.
var ErrNotDurable = errors.New("claim not confirmed durable")

// CheckDurability reads the server's persistence settings and returns the
// Durability to claim with, or an error naming the Redis setting or the
// vms key to change when the server cannot give mode.
func CheckDurability(ctx context.Context, rdb redis.UniversalClient, mode string, timeout time.Duration, log *slog.Logger) (Durability, error) {
	d := Durability{Mode: mode, Timeout: timeout}
	ms := timeout.Milliseconds()
	switch mode {
	case "none":
		log.Warn("redis.durability is none: a claim may be lost with Redis's last writes, and then the same person is called twice. " +
			"Use aof (appendonly yes, appendfsync always) or replica in production")
		return d, nil
	case "replica":
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return d, fmt.Errorf("redis.durability replica: read INFO replication: %w", err)
		}
		if n, _ := strconv.Atoi(infoField(info, "connected_slaves")); n < 1 {
			return d, fmt.Errorf("redis.durability replica: the Redis master has no connected replica, so no claim could be confirmed: " +
				"attach a replica (replicaof) or set redis.durability: aof")
		}
		d.wait = []any{"WAIT", 1, ms}
		return d, nil
	case "aof":
	default:
		return d, fmt.Errorf("redis.durability %q: one of aof, replica, none", mode)
	}
	info, err := rdb.Info(ctx, "server", "persistence").Result()
	if err != nil {
		return d, fmt.Errorf("redis.durability aof: read INFO: %w", err)
	}
	if infoField(info, "aof_enabled") != "1" {
		return d, errors.New("redis.durability aof: the Redis server runs without AOF (appendonly no), so a restart forgets the last claims: " +
			"set appendonly yes and appendfsync always in redis.conf (or CONFIG SET), or set redis.durability: replica or none")
	}
	if v, err := rdb.ConfigGet(ctx, "appendfsync").Result(); err == nil && v["appendfsync"] == "always" {
		return d, nil // every write is on disk before Redis replies
	}
	if versionAtLeast(infoField(info, "redis_version"), 7, 2) {
		d.wait = []any{"WAITAOF", 1, 0, ms}
		return d, nil
	}
	return d, fmt.Errorf("redis.durability aof: Redis %s fsyncs its AOF only every second (or its appendfsync could not be read), "+
		"so a crash can forget a claim: set appendfsync always (redis.conf or CONFIG SET), use Redis >= 7.2 (WAITAOF), "+
		"or set redis.durability: replica or none", infoField(info, "redis_version"))
}

// applyDurable runs op and then d's wait command on the same connection
// (WAIT and WAITAOF count only the connection's own writes).
func (c *Client) applyDurable(ctx context.Context, op Op, d Durability) (OpResult, error) {
	if d.wait == nil {
		return c.Apply(ctx, op)
	}
	node := redis.Cmdable(c.rdb)
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		// A keyless command would go to a random node.
		n, err := cc.MasterForKey(ctx, recordKey(op.ID))
		if err != nil {
			return OpResult{}, err
		}
		node = n
	}
	keys, argv := c.scriptArgs(op)
	for try := 0; ; try++ {
		pipe := node.Pipeline()
		res := stateScript.EvalSha(ctx, pipe, keys, argv...)
		wait := pipe.Do(ctx, d.wait...)
		_, err := pipe.Exec(ctx)
		if err != nil && try == 0 && res.Err() != nil && strings.HasPrefix(res.Err().Error(), "NOSCRIPT") {
			if err := stateScript.Load(ctx, node).Err(); err != nil {
				return OpResult{}, err
			}
			continue
		}
		if res.Err() != nil {
			return OpResult{}, fmt.Errorf("message %s: %s: %w", op.ID, op.Name, res.Err())
		}
		r, err := opResult(op, res)
		if err != nil || !r.Applied {
			return r, err
		}
		if !waitConfirmed(wait) {
			return r, fmt.Errorf("message %s: %w within %s (%v)", op.ID, ErrNotDurable, d.Timeout, wait.Err())
		}
		return r, nil
	}
}

func waitConfirmed(cmd *redis.Cmd) bool {
	v, err := cmd.Result()
	if err != nil {
		return false
	}
	switch x := v.(type) {
	case int64: // WAIT: replicas that acknowledged
		return x >= 1
	case []any: // WAITAOF: local fsynced, replicas fsynced
		n, _ := x[0].(int64)
		return len(x) == 2 && n >= 1
	}
	return false
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	return ma > major || (ma == major && mi >= minor)
}
