package worker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
)

// latencyRig is a hermetic deployment for benchmarks: a private
// redis-server, the carrier simulator and one worker, as newRig builds
// them, with two differences: it takes a testing.TB, and the sender (the
// upstream's queue client, which also watches records) has its own Redis
// connection pool, as a separate upstream process would, so waiting for
// results never takes connections from the worker.
type latencyRig struct {
	worker *Worker
	sender *queue.Client
}

func newLatencyRig(tb testing.TB, edit func(*config.Config)) *latencyRig {
	tb.Helper()
	redis := redistest.Start(tb)
	s, err := sim.Start(context.Background(), sim.Config{Listen: "127.0.0.1:0", DiscardAudio: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })

	cfg := config.Defaults()
	cfg.Policy.HMACSecret = "test-secret-0123456789"
	cfg.Redis.URL = redis.URL
	cfg.Trunks[0].URI = "sip:" + s.Addr().String()
	cfg.TTS.CacheDir = cacheDir.Path(tb)
	cfg.Call.RingTimeout = config.Duration(2 * time.Second)
	cfg.Worker.DrainTimeout = config.Duration(10 * time.Second)
	cfg.Worker.JournalDir = tb.TempDir()
	cfg.Policy.DisableLimits() // the same numbers are called many times, at any hour
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	w, err := New(cfg, redis.Client(tb), nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Shutdown)
	r := &latencyRig{worker: w, sender: NewQueueClient(cfg, redis.Client(tb))}
	tb.Cleanup(func() { _ = r.sender.Close() })
	return r
}

// busyNumber returns a distinct number the simulator answers 486 Busy
// (last two digits 01): the call ends at once, and per-number frequency
// limits, if any are added, never see the same number twice.
func busyNumber(i int) string { return fmt.Sprintf("+86138%06d01", i%1_000_000) }

// latencyCode is the same in every message, so that its audio is rendered
// once (in the warm-up) and the measurement is the pipeline's pick-up and
// dispatch, not espeak-ng.
const latencyCode = "4821"

// send enqueues one busy call and returns its message ID and when SendCode returned.
func (r *latencyRig) send(tb testing.TB, i int) (string, time.Time) {
	id, returned, err := r.trySend(i)
	if err != nil {
		tb.Fatal(err)
	}
	return id, returned
}

// trySend is send for goroutines other than the benchmark's.
func (r *latencyRig) trySend(i int) (string, time.Time, error) {
	rec, err := r.sender.SendCode(context.Background(), queue.CodeRequest{To: busyNumber(i), Code: latencyCode, PlayTimes: 1})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("SendCode: %w", err)
	}
	return rec.ID, time.Now(), nil
}

// latency reads a finished message and returns enqueue → INVITE, measured
// on the record's own timestamps: EnqueuedAt (taken by SendCode before it
// writes the record and the task) to InviteAt (taken by the worker's
// Dialer as it writes the INVITE), and from SendCode's return to InviteAt.
func (r *latencyRig) latency(tb testing.TB, id string, returned time.Time) (fromEnqueue, fromReturn time.Duration) {
	rec, err := r.sender.Get(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	if rec.Status != queue.StatusBusy || rec.InviteAt.IsZero() {
		tb.Fatalf("message %s: status %s %d (%s), invite at %v; want busy 486 with an INVITE time",
			id, rec.Status, rec.SIPCode, rec.Reason, rec.InviteAt)
	}
	return rec.InviteAt.Sub(rec.EnqueuedAt), rec.InviteAt.Sub(returned)
}

// waitDone blocks until the message is terminal.
func (r *latencyRig) waitDone(tb testing.TB, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.sender.Watch(ctx, id, nil); err != nil {
		tb.Fatalf("message %s did not finish: %v", id, err)
	}
}

// BenchmarkEnqueueToInvite measures the time from enqueueing a verification
// code call to its INVITE leaving the worker, p50 and p99, for asynq's
// default poll interval (1s) and vms's (20ms):
//
//   - idle: one message at a time. Each waits until the previous one is
//     finished and then a random 0–1.5 poll intervals more, so messages
//     arrive at a random phase of the worker's poll loop (asynq sleeps
//     0.5–1.5 intervals between empty polls), as messages to an idle
//     service do; enqueueing right after the previous call ended would
//     always land at the start of a sleep and measure the worst case.
//   - load: 50 messages a second for 4 s (200 messages), each enqueued on a
//     ticker from its own goroutine (open loop: a slow enqueue does not
//     delay the next one), then all awaited.
//
// Every call goes to the simulator's busy number (486 at once), so calls
// hold no channel, and worker.concurrency is 100.
//
// The measured quantity is a distribution, not a cost per op, so one op is
// one whole scenario: b.Loop runs it once with the default benchtime or
// -benchtime=1x (a scenario takes longer than 1 s), and pools the samples of
// all runs if more are asked for (-benchtime=3x). ns/op is then the
// scenario's wall time and means little; the p50-ms, p99-ms and max-ms
// metrics (from the record's EnqueuedAt) and ret-p50-ms, ret-p99-ms (from
// SendCode's return) are the result. With 40 idle samples p99 is the
// largest but one.
func BenchmarkEnqueueToInvite(b *testing.B) {
	const (
		idleMessages = 40
		loadRate     = 50 // messages per second
		loadFor      = 4 * time.Second
	)
	for _, mode := range []string{"idle", "load"} {
		for _, poll := range []time.Duration{time.Second, 20 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/poll=%s", mode, poll), func(b *testing.B) {
				r := newLatencyRig(b, func(c *config.Config) {
					c.Worker.Concurrency = 100
					c.Worker.PollInterval = config.Duration(poll)
				})
				// Warm-up, not measured: renders the audio into the cache,
				// opens the worker's connections.
				id, _ := r.send(b, 0)
				r.waitDone(b, id)

				var fromEnqueue, fromReturn []time.Duration
				n := 1
				for b.Loop() {
					switch mode {
					case "idle":
						for range idleMessages {
							time.Sleep(rand.N(poll * 3 / 2))
							id, returned := r.send(b, n)
							n++
							r.waitDone(b, id)
							e, ret := r.latency(b, id, returned)
							fromEnqueue, fromReturn = append(fromEnqueue, e), append(fromReturn, ret)
						}
					case "load":
						e, ret := r.load(b, &n, loadRate, loadFor)
						fromEnqueue, fromReturn = append(fromEnqueue, e...), append(fromReturn, ret...)
					}
				}
				reportPercentiles(b, "", fromEnqueue)
				reportPercentiles(b, "ret-", fromReturn)
				b.ReportMetric(float64(len(fromEnqueue))/float64(b.N), "msgs/op")
			})
		}
	}
}

// load sends rate messages a second for d, waits for all of them and
// returns their latencies.
func (r *latencyRig) load(b *testing.B, n *int, rate int, d time.Duration) (fromEnqueue, fromReturn []time.Duration) {
	type sent struct {
		id       string
		returned time.Time
		err      error
	}
	total := int(d.Seconds() * float64(rate))
	out := make([]sent, total)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	start := time.Now()
	for i := range total {
		if i > 0 {
			<-tick.C
		}
		wg.Go(func() {
			id, returned, err := r.trySend(*n + i)
			out[i] = sent{id, returned, err}
		})
	}
	tick.Stop()
	wg.Wait()
	*n += total
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "sent/s")
	for _, s := range out {
		if s.err != nil {
			b.Fatal(s.err)
		}
		r.waitDone(b, s.id)
		e, ret := r.latency(b, s.id, s.returned)
		fromEnqueue, fromReturn = append(fromEnqueue, e), append(fromReturn, ret)
	}
	return fromEnqueue, fromReturn
}

func reportPercentiles(b *testing.B, prefix string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1e3 }
	q := func(p float64) float64 { return ms(d[min(len(d)-1, int(p*float64(len(d))))]) }
	b.ReportMetric(q(0.50), prefix+"p50-ms")
	b.ReportMetric(q(0.99), prefix+"p99-ms")
	if prefix == "" {
		b.ReportMetric(ms(d[len(d)-1]), "max-ms")
	}
}
