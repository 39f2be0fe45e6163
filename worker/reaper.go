package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/routing"
	"github.com/vms-project/vms/telephony"
)

// Every worker beats (a heartbeat key with a short TTL) and reaps: it
// looks for calls held by workers that stopped beating, and ends them on
// the wire from the dialog the dead worker recorded at the INVITE and the
// answer: BYE for an answered call, CANCEL for one still ringing. The call
// is recorded interrupted, billed up to that BYE, its channel slot freed,
// and its final callback follows from the record like any other.
const (
	beatEvery = time.Second
	beatTTL   = 5 * time.Second
	// deadAfter is how long a worker's heartbeat must be seen missing, by
	// a reaper that reached Redis all along, before its calls are taken
	// over: several beats, so a GC pause or a brief partition of the
	// owner does not count.
	deadAfter = 10 * time.Second
	// sweepEvery and sweepAge drive the orphan sweeper (queue.Sweep).
	sweepEvery = 10 * time.Second
	sweepAge   = 30 * time.Second
)

type reaper struct {
	q      *queue.Client
	self   string
	limits *routing.Limits
	dialer *telephony.Dialer
	rec    *journal
	log    *slog.Logger

	missing map[string]time.Time // owner → first seen without a heartbeat
}

// run beats, reaps and sweeps until ctx ends. The heartbeat has its own
// goroutine: hanging up a dead worker's calls must never delay it.
func (r *reaper) run(ctx context.Context) {
	r.missing = map[string]time.Time{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(beatEvery)
		defer t.Stop()
		for {
			bctx, cancel := context.WithTimeout(ctx, beatEvery)
			_ = r.q.Beat(bctx, r.self, beatTTL)
			cancel()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer wg.Wait()
	reap := time.NewTicker(beatEvery)
	defer reap.Stop()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reap.C:
			r.reap(ctx)
		case <-sweep.C:
			if n, err := r.q.Sweep(ctx, sweepAge); err != nil && ctx.Err() == nil {
				r.log.Warn("orphan sweep", "err", err)
			} else if n > 0 {
				r.log.Warn("enqueued the tasks of messages whose sender stopped before enqueueing them", "messages", n)
			}
		}
	}
}

// reap takes over the calls of every worker seen dead for deadAfter.
func (r *reaper) reap(ctx context.Context) {
	calls, err := r.q.InFlight(ctx)
	if err != nil {
		clear(r.missing)
		return
	}
	now := time.Now()
	seen := map[string]bool{}
	for _, c := range calls {
		if c.Owner == "" || c.Owner == r.self || seen[c.Owner] {
			continue
		}
		seen[c.Owner] = true
		alive, err := r.q.Alive(ctx, c.Owner)
		if err != nil {
			clear(r.missing)
			return
		}
		if alive {
			delete(r.missing, c.Owner)
		} else if _, ok := r.missing[c.Owner]; !ok {
			r.missing[c.Owner] = now
		}
	}
	for owner := range r.missing {
		if !seen[owner] {
			delete(r.missing, owner)
		}
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		if first, ok := r.missing[c.Owner]; ok && now.Sub(first) >= deadAfter {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.takeOver(ctx, c)
			}()
		}
	}
	wg.Wait()
}

// takeOver ends one call of a dead worker and records it.
func (r *reaper) takeOver(ctx context.Context, c queue.InFlight) {
	log := r.log.With("message_id", c.ID, "attempt", c.Attempt, "dead_worker", c.Owner)
	tk, err := r.q.Takeover(ctx, c.ID, c.Attempt, c.Owner, r.self)
	if err != nil || tk == nil {
		return // gone, or another reaper was first
	}
	rec := &queue.Record{Message: queue.Message{ID: c.ID}, Attempt: c.Attempt, HungUpBy: "caller", AnsweredAt: tk.AnsweredAt}
	var d telephony.Dialog
	if tk.Dialog == "" || json.Unmarshal([]byte(tk.Dialog), &d) != nil {
		// The INVITE was not recorded as sent: whether it left is unknown.
		rec.Status, rec.HungUpBy = queue.StatusUnknown, ""
		rec.Reason = fmt.Sprintf("worker %s stopped before its INVITE was recorded; not dialled again", c.Owner)
		rec.EndedAt = time.Now()
	} else {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		end, err := r.dialer.EndDialog(ectx, d)
		cancel()
		rec.Status, rec.EndedAt = queue.StatusInterrupted, end
		what := "hung up (BYE)"
		if d.RemoteTag == "" {
			what = "canceled (CANCEL)"
		}
		rec.Reason = fmt.Sprintf("worker %s stopped during the call; %s by worker %s", c.Owner, what, r.self)
		if err != nil {
			rec.Reason += ": " + err.Error()
		}
		if !tk.AnsweredAt.IsZero() {
			rec.BillableMS = max(end.Sub(tk.AnsweredAt).Milliseconds(), 0)
		}
	}
	tries := []queue.Attempt{{Attempt: c.Attempt, Trunk: tk.Trunk, CallID: d.CallID, Status: rec.Status, Reason: rec.Reason,
		AnsweredAt: tk.AnsweredAt, EndedAt: rec.EndedAt, BillableMS: rec.BillableMS}}
	op, err := queue.FinishOp(r.self, rec, tries, nil)
	if err != nil {
		log.Error("record a taken-over call", "err", err)
		return
	}
	r.rec.record(op)
	if tk.Slot != "" && tk.Trunk != "" {
		if err := r.limits.ReleaseMember(ctx, tk.Trunk, tk.Slot); err != nil {
			log.Warn("release the dead worker's channel slot; it frees itself when its lease ends", "err", err)
		}
	}
	log.Warn("took over the call of a worker that stopped", "status", rec.Status, "billable_ms", rec.BillableMS, "reason", rec.Reason)
}
