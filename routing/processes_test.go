package routing_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/worker"
)

// workerEnv names the config file when this test binary runs as a worker
// process (see TestMain).
const workerEnv = "VMS_ROUTING_TEST_WORKER_CONFIG"

// TestMain turns the test binary into a worker process when workerEnv is
// set: the multi-process test starts several of them, each a separate OS
// process with its own SIP socket, RTP ports and Redis connections, as real
// `vms worker` processes are. They run until SIGTERM.
func TestMain(m *testing.M) {
	if path := os.Getenv(workerEnv); path != "" {
		os.Exit(runWorker(path))
	}
	os.Exit(m.Run())
}

func runWorker(path string) int {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("config", "err", err)
		return 2
	}
	// The same simulator numbers are called at any hour of the test run.
	cfg.Policy.DisableLimits()
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		log.Error("redis", "err", err)
		return 2
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	w, err := worker.New(cfg, rdb, log)
	if err != nil {
		log.Error("worker", "err", err)
		return 1
	}
	if err := w.Start(); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	<-stop
	w.Shutdown()
	return 0
}

// TestLimitsHoldAcrossWorkerProcesses runs three worker processes (four calls
// each at once) against one simulator trunk with max_channels 3 and cps 5,
// and checks what the simulator saw: never more than 3 calls up at once,
// never more than 5 INVITEs in a second, every message completed, and the
// tasks that waited for the trunk rescheduled without using up a retry.
func TestLimitsHoldAcrossWorkerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	srv := redistest.Start(t)
	const n = 18
	scen := map[string]sim.Scenario{}
	var numbers []string
	for i := range n {
		num := fmt.Sprintf("+86138001381%02d", i)
		numbers = append(numbers, num)
		hold := "hangup:200ms"
		if i%3 != 0 {
			hold = "hangup:2s"
		}
		sc, err := sim.ParseScenario(hold)
		if err != nil {
			t.Fatal(err)
		}
		scen[num] = sc
	}
	s, err := sim.Start(context.Background(), sim.Config{Listen: "127.0.0.1:0", Scenarios: scen, DiscardAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	dir := t.TempDir()
	cache := filepath.Join(dir, "tts")
	var cfgPath string
	var procs []*exec.Cmd
	for p := range 3 {
		cfgPath = filepath.Join(dir, fmt.Sprintf("worker%d.yaml", p))
		yaml := fmt.Sprintf(`redis: {url: %q}
sip: {listen: "udp://127.0.0.1:0"}
rtp: {port_min: %d, port_max: %d}
worker: {concurrency: 4, drain_timeout: 10s, journal_dir: %q}
call: {ring_timeout: 5s}
routing: {limit_wait: 2s, channel_lease: 5s}
tts: {cache_dir: %q}
policy: {hmac_secret: test-secret-0123456789}
trunks:
  - name: sim
    uri: sip:%s
    transport: udp
    caller_id: "+15550000000"
    codecs: [PCMU]
    max_channels: 3
    cps: 5
`, srv.URL, 30000+p*200, 30000+p*200+199, filepath.Join(dir, "journal"), cache, s.Addr())
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), workerEnv+"="+cfgPath)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	t.Cleanup(func() {
		for _, c := range procs {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range procs {
			if err := c.Wait(); err != nil {
				t.Logf("worker process: %v", err)
			}
		}
	})

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Policy.DisableLimits()
	rdb := srv.Client(t)
	q := worker.NewQueueClient(cfg, rdb)
	defer q.Close()
	ctx := context.Background()
	var ids []string
	for _, num := range numbers {
		rec, err := q.SendCode(ctx, queue.CodeRequest{To: num, Code: "2580", PlayTimes: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	for _, id := range ids {
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		rec, err := q.Watch(wctx, id, nil)
		cancel()
		if err != nil {
			t.Fatalf("message %s did not finish: %v", id, err)
		}
		if rec.Status != queue.StatusCompleted {
			t.Errorf("message %s: %s (%s), want completed", id, rec.Status, rec.Reason)
		}
	}

	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.WaitEnded(ectx, n); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls()
	if len(calls) != n || s.Invites() != n {
		t.Fatalf("simulator saw %d calls / %d INVITEs, want %d: one per message", len(calls), s.Invites(), n)
	}
	// Concurrency: the most calls up at once, from INVITE to end.
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	var invites []time.Time
	for _, c := range calls {
		edges = append(edges, edge{c.InviteAt, +1}, edge{c.EndedAt, -1})
		invites = append(invites, c.InviteAt)
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.d - b.d // an end before a start at the same instant
	})
	up, peak := 0, 0
	for _, e := range edges {
		up += e.d
		peak = max(peak, up)
	}
	// Rate: the most INVITEs in any 1 s window.
	slices.SortFunc(invites, func(a, b time.Time) int { return a.Compare(b) })
	perSecond, j := 0, 0
	minGap5 := time.Hour
	for i := range invites {
		for invites[i].Sub(invites[j]) >= time.Second {
			j++
		}
		perSecond = max(perSecond, i-j+1)
		if i >= 5 {
			minGap5 = min(minGap5, invites[i].Sub(invites[i-5]))
		}
	}
	span := invites[n-1].Sub(invites[0])
	t.Logf("%d calls over %s: at most %d up at once (max_channels 3), at most %d INVITEs in a 1 s window (cps 5), shortest span of 6 INVITEs %s",
		n, span.Round(time.Millisecond), peak, perSecond, minGap5.Round(time.Millisecond))
	if peak > 3 {
		t.Errorf("%d calls up at once on a trunk with max_channels 3", peak)
	}
	if peak < 3 {
		t.Errorf("at most %d calls up at once: the test did not load the trunk to its 3 channels", peak)
	}
	// The limiter spaces grants 200 ms apart; the INVITEs reach the
	// simulator after a claim and call setup whose time varies a little.
	if minGap5 < 850*time.Millisecond {
		t.Errorf("6 INVITEs arrived within %s on a 5 cps trunk", minGap5)
	}
	if span < time.Duration(n-1)*200*time.Millisecond-300*time.Millisecond {
		t.Errorf("%d INVITEs within %s: faster than 5 per second", n, span)
	}

	// Tasks that waited too long for the trunk were rescheduled, never
	// counted as failed tries.
	insp := asynq.NewInspectorFromRedisClient(rdb)
	rescheduled := 0
	for _, id := range ids {
		info, err := insp.GetTaskInfo(queue.QueueCode, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Retried != 0 {
			t.Errorf("task %s: %d retries counted (%s)", id, info.Retried, info.LastErr)
		}
		if strings.Contains(info.LastErr, "saturated") {
			rescheduled++
		}
	}
	t.Logf("%d of %d tasks were rescheduled while the trunk was saturated", rescheduled, n)
	if rescheduled == 0 {
		t.Error("no task was rescheduled: the test did not saturate the trunk beyond routing.limit_wait")
	}
}
