package worker

import (
	"context"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

// waitStatus polls until the message reaches status.
func waitStatus(t *testing.T, q *queue.Client, id string, status queue.Status, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if rec, err := q.Get(context.Background(), id); err == nil && rec.Status == status {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("message %s did not reach %s in %s", id, status, d)
}

func TestShutdownLetsCallsInProgressFinish(t *testing.T) {
	r := newRig(t, nil)
	if err := r.worker.Start(); err != nil {
		t.Fatal(err)
	}
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "1357", PlayTimes: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r.q, rec.ID, queue.StatusAnswered, 20*time.Second)

	stopped := make(chan struct{})
	go func() { r.worker.Shutdown(); close(stopped) }()
	time.Sleep(100 * time.Millisecond)
	// A message enqueued while draining is not taken by this worker.
	late, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "2468"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	got, _ := r.q.Get(context.Background(), rec.ID)
	if got.Status != queue.StatusCompleted || !got.PlayedToEnd || got.HungUpBy != "caller" {
		t.Fatalf("call in progress at shutdown: %s played_to_end=%v (%s); want completed, played to the end", got.Status, got.PlayedToEnd, got.Reason)
	}
	if l, _ := r.q.Get(context.Background(), late.ID); l.Status != queue.StatusQueued {
		t.Fatalf("message sent during drain is %s, want still queued for another worker", l.Status)
	}
	if n := r.sim.Invites(); n != 1 {
		t.Fatalf("simulator saw %d INVITEs, want 1", n)
	}
}

func TestDrainTimeoutHangsUpAndRecords(t *testing.T) {
	r := newRig(t, func(c *config.Config) { c.Worker.DrainTimeout = config.Duration(time.Second) })
	if err := r.worker.Start(); err != nil {
		t.Fatal(err)
	}
	rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: "+8613800138000", Code: "97531", PlayTimes: 3})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r.q, rec.ID, queue.StatusAnswered, 20*time.Second)
	r.worker.Shutdown()
	calls, err := r.sim.WaitEnded(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r.q, rec.ID, queue.StatusCompleted, 5*time.Second)
	got, _ := r.q.Get(context.Background(), rec.ID)
	if got.PlayedToEnd || got.HungUpBy != "caller" || got.BillableMS > 3000 || calls[0].HungUpBy != "caller" {
		t.Fatalf("record %+v: want a call hung up by vms at the drain timeout, not played to the end", got)
	}
	if d := got.BillableMS - calls[0].DurationMS; d < -40 || d > 40 {
		t.Fatalf("billable %d ms, simulator %d ms", got.BillableMS, calls[0].DurationMS)
	}
}
