package queue

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/redistest"
)

// TestDurabilityIsCheckedAtStartUp: a worker refuses a Redis that cannot
// give the chosen durability, naming what to change; with appendfsync
// always the claim needs no wait; replica mode WAITs on the claim's
// connection and, with no replica to confirm, puts the claim back.
func TestDurabilityIsCheckedAtStartUp(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		args []string
		mode string
		want string // "" accepted
	}{
		{"aof always", nil, "aof", ""},
		{"no aof", []string{"--appendonly", "no"}, "aof", "appendonly no"},
		{"everysec", []string{"--appendfsync", "everysec"}, "aof", "appendfsync always"},
		{"no replica", nil, "replica", "no connected replica"},
		{"none", []string{"--appendonly", "no"}, "none", ""},
		{"bad mode", nil, "sometimes", "redis.durability"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redistest.StartWith(t, tc.args...).Client(t)
			d, err := CheckDurability(ctx, rdb, tc.mode, time.Second, log)
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
			if err == nil && d.wait != nil {
				t.Fatalf("mode %s on Redis %v waits with %v; appendfsync always needs no wait", tc.mode, tc.args, d.wait)
			}
		})
	}

	// replica mode on a Redis without replicas (as if the replica had just
	// gone): WAIT confirms nothing, so the claim is taken back, not dialled.
	c, _ := newTestClient(t)
	rec, err := c.SendCode(ctx, CodeRequest{To: "+8613800138000", Code: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	d := Durability{Mode: "replica", Timeout: 50 * time.Millisecond, wait: []any{"WAIT", 1, 50}}
	if _, _, err := c.Claim(ctx, rec.ID, 1, "w1", "s1", d); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("claim without a replica to confirm it: %v, want ErrNotDurable", err)
	}
	got, _ := c.Get(ctx, rec.ID)
	if got.Status != StatusQueued || got.Attempt != 0 {
		t.Fatalf("after an unconfirmed claim the record is %s attempt %d, want queued attempt 0", got.Status, got.Attempt)
	}
	if out, _, err := c.Claim(ctx, rec.ID, 1, "w2", "s2", Durability{}); err != nil || out != Claimed {
		t.Fatalf("the message can be claimed again: %v %v", out, err)
	}
}
