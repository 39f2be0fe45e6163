package routing

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/tts"
)

func limited(max int, cps float64) *Trunk {
	return NewTrunk(config.Trunk{Name: "t", MaxChannels: max, CPS: cps}, telephony.Trunk{Name: "t"})
}

// TestChannelsNeverExceeded runs many holders against a 3-channel trunk from
// several Limits (as several workers would) and checks that at most 3 hold a
// slot at any moment, and that all of them get one eventually.
func TestChannelsNeverExceeded(t *testing.T) {
	srv := redistest.Start(t)
	tr := limited(3, 0)
	var holding, peak atomic.Int64
	var wg sync.WaitGroup
	var got atomic.Int64
	for w := range 3 {
		l := NewLimits(srv.Client(t), 2*time.Second, nil)
		for i := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := l.Acquire(context.Background(), tr, fmt.Sprintf("m-%d-%d", w, i), 20*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				n := holding.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(150 * time.Millisecond)
				holding.Add(-1)
				s.Release()
				got.Add(1)
			}()
		}
	}
	wg.Wait()
	if peak.Load() != 3 || got.Load() != 15 {
		t.Fatalf("peak holders %d (want 3), slots taken %d (want 15)", peak.Load(), got.Load())
	}
	if n, _ := NewLimits(srv.Client(t), time.Second, nil).InUse(context.Background(), "t"); n != 0 {
		t.Fatalf("%d slots still held after every release", n)
	}
}

func TestSameMessageTakesOneSlot(t *testing.T) {
	l := NewLimits(redistest.Start(t).Client(t), 5*time.Second, nil)
	tr := limited(2, 0)
	ctx := context.Background()
	a, err := l.Acquire(ctx, tr, "msg-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	again, err := l.Acquire(ctx, tr, "msg-1", 0) // a redelivery of the same message
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	b, err := l.Acquire(ctx, tr, "msg-2", 0)
	if err != nil {
		t.Fatalf("second message: %v (the retry must not have taken a second slot)", err)
	}
	defer b.Release()
	_, err = l.Acquire(ctx, tr, "msg-3", 100*time.Millisecond)
	if sat, ok := IsSaturated(err); !ok || sat.What != "channels" || sat.RetryAfter <= 0 {
		t.Fatalf("third message on a full trunk: %v, want a SaturatedError on channels", err)
	}
}

// TestCrashedHolderSlotReturns: a worker takes the only slot and dies (its
// Redis connection goes away; nothing releases or renews). The slot comes
// back once its lease ends, not before.
func TestCrashedHolderSlotReturns(t *testing.T) {
	srv := redistest.Start(t)
	tr := limited(1, 0)
	lease := 1500 * time.Millisecond
	crashed := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket})
	dead := NewLimits(crashed, lease, nil)
	if _, err := dead.Acquire(context.Background(), tr, "held-by-dead-worker", 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = crashed.Close() // the worker is gone: its renewals fail from now on

	live := NewLimits(srv.Client(t), lease, nil)
	if _, err := live.Acquire(context.Background(), tr, "other", 300*time.Millisecond); err == nil {
		t.Fatal("took a slot while the dead worker's lease was still running")
	}
	s, err := live.Acquire(context.Background(), tr, "other", 5*time.Second)
	if err != nil {
		t.Fatalf("slot did not come back after the lease: %v", err)
	}
	defer s.Release()
	if waited := time.Since(start); waited < lease-100*time.Millisecond || waited > lease+time.Second {
		t.Errorf("slot came back after %s, want about the lease (%s)", waited, lease)
	}
}

// TestSlotRenewedWhileHeld: a slot held for longer than its lease stays held.
func TestSlotRenewedWhileHeld(t *testing.T) {
	srv := redistest.Start(t)
	tr := limited(1, 0)
	l := NewLimits(srv.Client(t), time.Second, nil)
	s, err := l.Acquire(context.Background(), tr, "long-call", 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := l.Acquire(context.Background(), tr, "other", 0); err == nil {
		t.Fatal("a renewed slot was taken by another message")
	}
	s.Release()
	s2, err := l.Acquire(context.Background(), tr, "other", 0)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	s2.Release()
}

// TestCPSSpacing: 10 calls through a 5 cps trunk from several Limits at
// once leave Redis at least 200 ms apart (by the time they were granted).
func TestCPSSpacing(t *testing.T) {
	srv := redistest.Start(t)
	tr := limited(0, 5)
	var mu sync.Mutex
	var at []time.Time
	var wg sync.WaitGroup
	for i := range 10 {
		l := NewLimits(srv.Client(t), time.Second, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := l.Acquire(context.Background(), tr, fmt.Sprint("m", i), 10*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
			s.Release()
		}()
	}
	wg.Wait()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	if span := at[len(at)-1].Sub(at[0]); span < 1700*time.Millisecond {
		t.Fatalf("10 calls at 5 cps granted within %s, want at least 1.8s (minus slack)", span)
	}
	for i := 5; i < len(at); i++ {
		if d := at[i].Sub(at[i-5]); d < 900*time.Millisecond {
			t.Errorf("6 calls granted within %s", d)
		}
	}
	// A short wait is refused with the limiter's retry-after, not spun on.
	l := NewLimits(srv.Client(t), time.Second, nil)
	var sat *SaturatedError
	for range 3 {
		if _, err := l.Acquire(context.Background(), tr, "x", 0); err != nil {
			sat, _ = IsSaturated(err)
			break
		}
	}
	if sat == nil || sat.What != "calls per second" || sat.RetryAfter > 250*time.Millisecond {
		t.Fatalf("no wait allowed: %+v, want calls-per-second saturation with retry-after <= 200ms", sat)
	}
}

// TestDownTrunkProbedBackUp: a trunk marked down is probed with OPTIONS after
// its cool-off and takes calls again only once it answers.
func TestDownTrunkProbedBackUp(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := telephony.NewDialer(telephony.Config{Listen: "127.0.0.1:0", RTPPortMin: 40000, RTPPortMax: 40100})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	mk := func(name, addr string) *Trunk {
		base, err := telephonyTrunk(name, addr)
		if err != nil {
			t.Fatal(err)
		}
		return NewTrunk(config.Trunk{Name: name}, base)
	}
	live := mk("live", s.Addr().String())
	gone := mk("gone", "127.0.0.1:9") // nothing answers there
	r := New(rdb, []*Trunk{live, gone}, d, Options{FailureThreshold: 1, Cooloff: time.Second,
		ProbeInterval: 100 * time.Millisecond, ChannelLease: time.Second})
	fail := telephony.Result{Status: queue.StatusUnreachable, SIPCode: 503}
	r.Report(ctx, live, fail)
	r.Report(ctx, gone, fail)
	if _, err := r.Route(ctx, "+8613800138000"); err == nil {
		t.Fatal("both trunks down, yet a route was returned")
	}
	r.ProbeDue(ctx) // cool-off not over: no probe
	if _, err := r.Route(ctx, "+8613800138000"); err == nil {
		t.Fatal("a trunk came back before its cool-off ended")
	}
	time.Sleep(1100 * time.Millisecond)
	r.ProbeDue(ctx)
	got, err := r.Route(ctx, "+8613800138000")
	if err != nil || !equal(names(got), []string{"live"}) {
		t.Fatalf("after the probes: %v (%v), want only the trunk that answered OPTIONS", names(got), err)
	}
	down, _ := r.Health.Down(ctx, []string{"gone"})
	if !down["gone"] {
		t.Fatal("the trunk that did not answer OPTIONS is up")
	}
}

func telephonyTrunk(name, addr string) (telephony.Trunk, error) {
	var u sip.Uri
	if err := sip.ParseUri("sip:"+addr, &u); err != nil {
		return telephony.Trunk{}, err
	}
	return telephony.Trunk{Name: name, URI: u, Transport: "udp", Codecs: []tts.Codec{tts.PCMU}}, nil
}
