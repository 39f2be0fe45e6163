//go:build linux

package interop

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/internal/testutil"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/worker"
)

// rig is one vms deployment for a test: a private redis-server and a
// worker whose only trunk the test points at a real peer.
type rig struct {
	cfg    *config.Config
	worker *worker.Worker
	q      *queue.Client
}

// newRig builds the worker with the defaults, a private Redis and the
// test's edits (the trunk URI and credentials), and starts it.
func newRig(t *testing.T, edit func(*config.Config)) *rig {
	t.Helper()
	redis := redistest.Start(t)
	cfg := config.Defaults()
	cfg.Policy.HMACSecret = "test-secret-0123456789"
	cfg.Redis.URL = redis.URL
	cfg.TTS.CacheDir = cacheDir.Path(t)
	cfg.Call.RingTimeout = config.Duration(5 * time.Second)
	cfg.Call.RepeatPause = config.Duration(300 * time.Millisecond)
	cfg.Worker.DrainTimeout = config.Duration(10 * time.Second)
	cfg.Worker.JournalDir = t.TempDir()
	// These tests are about SIP peers, not policy: call at any hour.
	cfg.Policy.DisableLimits()
	edit(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.Client(t)
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := worker.New(cfg, rdb, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{cfg: cfg, worker: w, q: worker.NewQueueClient(cfg, rdb)}
	t.Cleanup(func() { _ = r.q.Close() })
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return r
}

// wait blocks until the message is terminal, failing the test after d.
func (r *rig) wait(t *testing.T, id string, d time.Duration) *queue.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var seen []queue.Status
	rec, err := r.q.Watch(ctx, id, func(e queue.Event) { seen = append(seen, e.Status) })
	if err != nil {
		t.Fatalf("message %s did not finish in %s (states %v): %v", id, d, seen, err)
	}
	t.Logf("message %s: states %v", id, seen)
	return rec
}

// startSim runs the carrier simulator in-process on a free loopback port.
func startSim(t *testing.T) *sim.Simulator {
	t.Helper()
	s, err := sim.Start(context.Background(), sim.Config{Listen: "127.0.0.1:0", RecordDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// cacheDir lets the tests of this package share rendered audio, as workers
// of one deployment do.
var cacheDir = testutil.SharedDir{Prefix: "vms-interop-tts-"}

func TestMain(m *testing.M) { os.Exit(cacheDir.Run(m)) }
