package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/worker"
)

// cmdDemo runs the whole pipeline in one process: Redis (in-process unless
// REDIS_URL is set), the carrier simulator on a free loopback port, a
// worker, then one verification code call and one template notification.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("demo", stderr)
	recordDir := fs.String("record-dir", "demo-output", "where the simulator writes what it received")
	verbose := fs.Bool("v", false, "show the worker's logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	embedded := os.Getenv("REDIS_URL") == ""
	if embedded {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		// miniredis only expires keys when its clock is moved.
		stopClock := advanceClock(mr)
		defer stopClock()
		os.Setenv("REDIS_URL", "redis://"+mr.Addr())
		defer os.Unsetenv("REDIS_URL")
		fmt.Fprintf(stdout, "redis:  in-process miniredis at %s — NOT durable, gone when the demo ends (set REDIS_URL for a real Redis)\n", mr.Addr())
	} else {
		fmt.Fprintf(stdout, "redis:  %s (REDIS_URL)\n", redactRedisURL(os.Getenv("REDIS_URL")))
	}
	cfg, err := config.LoadWith(*cfgPath, func(c *config.Config) {
		// The in-process Redis is gone when the demo ends, and so is
		// everything keyed by this throw-away secret.
		if embedded && c.Policy.HMACSecret == "" && c.Policy.HMACSecretEnv == "" {
			c.Policy.HMACSecret = rand.Text()
		}
	})
	if err != nil {
		return &exitError{2, err}
	}
	// The demo calls simulator numbers at any hour: no quiet hours or
	// frequency limits here (suppression, consent and templates still apply).
	cfg.Policy.DisableLimits()
	if err := os.MkdirAll(*recordDir, 0o755); err != nil {
		return err
	}
	s, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", RecordDir: *recordDir})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "carrier simulator: udp %s, recording to %s/\n", s.Addr(), *recordDir)

	cfg.Trunks = cfg.Trunks[:1]
	cfg.Trunks[0].URI = "sip:" + s.Addr().String()
	cfg.SIP.Listen = "udp://127.0.0.1:0"
	cfg.Worker.JournalDir = filepath.Join(*recordDir, "journal")
	if embedded {
		// miniredis keeps nothing on disk: there is no durability to wait for.
		cfg.Redis.Durability = config.DurabilityNone
		fmt.Fprintln(stdout, "redis.durability: none — a claim is not on disk before its INVITE leaves (demo only)")
	}
	rdb, err := openRedis(ctx, cfg.Redis.URL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	w, err := worker.New(cfg, rdb, newLogger(stderr, *verbose, slog.LevelError))
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()
	fmt.Fprintf(stdout, "worker: sip %s, trunk %s, tts %s (cache %s)\n\n", w.Dialer.Addr(), cfg.Trunks[0].Name, cfg.TTS.Engine, cfg.TTS.CacheDir)

	q := worker.NewQueueClient(cfg, rdb)
	defer q.Close()
	code, err := q.SendCode(ctx, queue.CodeRequest{To: "+8613800138000", Code: "738205", PlayTimes: 2})
	if err != nil {
		return err
	}
	notify, err := q.SendTTS(ctx, queue.TTSRequest{To: "+8613900139000", TemplateID: "delivery",
		Params: []string{"Alex", "SF1024", "2 and 4 pm"}, PlayTimes: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enqueued verification code call %s to %s\n", code.ID, queue.MaskNumber(code.To))
	fmt.Fprintf(stdout, "enqueued template notification %s to %s\n\n", notify.ID, queue.MaskNumber(notify.To))

	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	records := make([]*queue.Record, 2)
	errs := make([]error, 2)
	for i, id := range []string{code.ID, notify.ID} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			records[i], errs[i] = q.Watch(wctx, id, func(e queue.Event) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(stdout, "%s  %-32s %s", e.At.Local().Format("15:04:05.000"), id, e.Status)
				if e.SIPCode != 0 {
					fmt.Fprintf(stdout, " (SIP %d)", e.SIPCode)
				}
				fmt.Fprintln(stdout)
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("waiting for the demo calls: %w", err)
	}
	calls, err := s.WaitEnded(wctx, 2)
	if err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nresults")
	ok := true
	for _, r := range records {
		fmt.Fprintf(stdout, "  %-4s %s: %s, SIP %d, played to end %v, billable %d ms = %d min, hung up by %s\n",
			r.Kind, r.ID, r.Status, r.SIPCode, r.PlayedToEnd, r.BillableMS, r.BillableMinutes, r.HungUpBy)
		ok = ok && r.Status == queue.StatusCompleted
	}
	fmt.Fprintln(stdout, "\nwhat the carrier simulator received (listen to the WAV files):")
	for _, c := range calls {
		abs, _ := filepath.Abs(c.WAVPath)
		fmt.Fprintf(stdout, "  %s  %s: %d RTP packets, %d gaps, %s, %d ms\n    %s\n", c.CallID, queue.MaskNumber(c.To),
			c.RTP.Packets, c.RTP.SeqGaps, c.Codec, c.DurationMS, abs)
	}
	if !ok {
		return errors.New("a demo call did not complete")
	}
	fmt.Fprintln(stdout, "\ndemo: both calls completed")
	return nil
}

// advanceClock moves miniredis' clock with the wall clock so TTLs expire.
func advanceClock(mr *miniredis.Miniredis) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				mr.FastForward(time.Second)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}
