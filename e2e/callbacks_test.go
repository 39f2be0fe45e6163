package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony/sim"
)

// Numbers: the simulator picks a scenario by the last two digits unless a
// test names one (Options.Scenarios). Each stack has its own simulator, so
// tests may reuse numbers.
const (
	numAnswer      = "+8613800138000" // 00 answer (hold until our BYE)
	numAnswer2     = "+8613800138010" // other: answer
	numBusy        = "+8613800138001" // 01 busy (486)
	numRing        = "+8613800138002" // 02 ring until CANCEL
	numNotFound    = "+8613800138004" // 04 404
	numUnavailable = "+8613800138005" // 05 503
	numHangup2     = "+8613800138012" // 12 answer, callee hangs up after 2 s
)

// StatusInterrupted is the state the spec gives a call whose worker died
// after the answer and that a survivor hung up (not a queue.Status today).
const StatusInterrupted = queue.Status("interrupted")

func TestCallbacksEndToEnd(t *testing.T) {
	t.Parallel()

	t.Run("completed", func(t *testing.T) {
		t.Parallel()
		// The callee presses 4 (a key without an action) half a second in.
		s := StartStack(t, Options{Scenarios: map[string]string{
			numAnswer:  "answer;dtmf=4@500ms",
			numAnswer2: "answer",
		}})
		rec := s.SendTTS(t, numAnswer, 1)
		// The same through the CLI (app "default", its own key).
		cli := s.SendCLI(t, "tts", "--to", numAnswer2, "--template", Template, "--param", "Alex", "--play-times", "1")
		rec = s.WaitTerminal(t, rec.ID, 30*time.Second)
		cli = s.WaitTerminalCLI(t, cli.ID, 30*time.Second)
		for _, r := range []*queue.Record{rec, cli} {
			if r.Status != queue.StatusCompleted || r.BillableMS <= 0 || r.HungUpBy != "caller" || !r.PlayedToEnd {
				t.Errorf("message %s: status %s, billable %d ms, hung up by %q, played to end %v; want completed, > 0, caller, true",
					r.ID, r.Status, r.BillableMS, r.HungUpBy, r.PlayedToEnd)
			}
		}
		if len(rec.Keys) != 1 || rec.Keys[0].Key != "4" {
			t.Errorf("keys %+v, want one 4", rec.Keys)
		}
		s.CheckInvites(t, numAnswer, 1)
		s.CheckInvites(t, numAnswer2, 1)
		if c, ok := s.Sim.WaitCall(numAnswer, 5*time.Second, nil); ok {
			if c.HungUpBy != "caller" || absMS(c.DurationMS-rec.BillableMS) > 500 {
				t.Errorf("carrier: hung up by %q after %d ms; our record bills %d ms", c.HungUpBy, c.DurationMS, rec.BillableMS)
			}
		}
		s.CheckCallbacks(t, rec, cli)
		s.CheckCDRs(t, []*queue.Record{rec, cli})
		s.CheckReconcile(t)
	})

	t.Run("busy_then_redial", func(t *testing.T) {
		t.Parallel()
		// The first INVITE gets 486, the redial is answered.
		s := StartStack(t, Options{
			Scenarios: map[string]string{numAnswer: "answer;fail=486x1"},
			Config: map[string]any{"routing.redial.tts": map[string]any{
				"on": []string{"busy"}, "max": 1, "delay": "1s"}},
		})
		rec := s.SendTTS(t, numAnswer, 1)
		rec = s.WaitTerminal(t, rec.ID, 45*time.Second)
		if rec.Status != queue.StatusCompleted || rec.Attempt != 2 {
			t.Errorf("status %s after %d attempts; want completed on attempt 2 (attempts: %+v)", rec.Status, rec.Attempt, rec.Attempts)
		}
		if v := attemptsOf(rec)[1]; v.status != queue.StatusBusy {
			t.Errorf("attempt 1 is %q in the attempts list, want busy (attempts: %+v)", v.status, rec.Attempts)
		}
		s.CheckInvites(t, numAnswer, 2)
		s.CheckCallbacks(t, rec) // dialing+final(busy) for 1, dialing+ringing+answered+final(completed) for 2
		s.CheckCDRs(t, []*queue.Record{rec})
	})

	t.Run("no_answer", func(t *testing.T) {
		t.Parallel()
		s := StartStack(t, Options{})
		rec := s.SendTTS(t, numRing, 1)
		rec = s.WaitTerminal(t, rec.ID, 30*time.Second)
		if rec.Status != queue.StatusNoAnswer || rec.BillableMS != 0 {
			t.Errorf("status %s, billable %d ms; want no_answer, 0 (reason %q)", rec.Status, rec.BillableMS, rec.Reason)
		}
		if c, ok := s.Sim.WaitCall(numRing, 5*time.Second, nil); !ok || !c.Canceled {
			t.Errorf("carrier: call to %s ended %v, canceled %v; want our CANCEL after the ring timeout", numRing, ok, c.Canceled)
		}
		s.CheckInvites(t, numRing, 1)
		s.CheckCallbacks(t, rec) // dialing, ringing, final(no_answer)
		s.CheckCDRs(t, []*queue.Record{rec})
	})

	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		s := StartStack(t, Options{})
		unavail := s.SendTTS(t, numUnavailable, 1) // 503 → unreachable
		notFound := s.SendTTS(t, numNotFound, 1)   // 404 → invalid_number
		unavail = s.WaitTerminal(t, unavail.ID, 30*time.Second)
		notFound = s.WaitTerminal(t, notFound.ID, 30*time.Second)
		if unavail.Status != queue.StatusUnreachable || unavail.SIPCode != 503 {
			t.Errorf("503: status %s, sip %d; want unreachable, 503", unavail.Status, unavail.SIPCode)
		}
		if notFound.Status != queue.StatusInvalidNumber || notFound.SIPCode != 404 {
			t.Errorf("404: status %s, sip %d; want invalid_number, 404", notFound.Status, notFound.SIPCode)
		}
		s.CheckInvites(t, numUnavailable, 1)
		s.CheckInvites(t, numNotFound, 1)
		s.CheckCallbacks(t, unavail, notFound)
		s.CheckCDRs(t, []*queue.Record{unavail, notFound})
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		// No worker yet: the message stays queued until we cancel it.
		s := StartStack(t, Options{Workers: -1})
		rec := s.SendTTS(t, numAnswer, 1)
		if c := s.Cancel(t, rec.ID); c.Status != queue.StatusCanceled {
			t.Fatalf("cancel answered status %s", c.Status)
		}
		s.StartWorker()
		time.Sleep(2 * time.Second) // a worker that would dial it has had the time to
		rec = s.WaitTerminal(t, rec.ID, 10*time.Second)
		if rec.Status != queue.StatusCanceled {
			t.Errorf("status %s, want canceled", rec.Status)
		}
		s.Sim.Flush()
		s.CheckInvites(t, numAnswer, 0)
		s.CheckCallbacks(t, rec) // one final(canceled), attempt 0
		s.CheckCDRs(t, []*queue.Record{rec})
	})

	t.Run("blocked_by_suppression", func(t *testing.T) {
		t.Parallel()
		// Sent while the number was allowed; suppressed before any worker
		// ran: the worker's check right before dialling blocks it.
		s := StartStack(t, Options{Workers: -1})
		rec := s.SendTTS(t, numAnswer, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.Client.AddSuppression(ctx, numAnswer, "e2e: callee asked us to stop"); err != nil {
			t.Fatal(err)
		}
		s.StartWorker()
		rec = s.WaitTerminal(t, rec.ID, 20*time.Second)
		if rec.Status != queue.StatusBlocked {
			t.Errorf("status %s (reason %q), want blocked", rec.Status, rec.Reason)
		}
		s.Sim.Flush()
		s.CheckInvites(t, numAnswer, 0)
		s.CheckCallbacks(t, rec) // one final(blocked), attempt 0
		s.CheckCDRs(t, []*queue.Record{rec})
	})

	t.Run("worker_killed_mid_call", func(t *testing.T) {
		t.Parallel()
		s := StartStack(t, Options{})
		first := s.Workers[0]
		rec := s.SendTTS(t, numAnswer, -2) // the long text, twice: the call stays up
		s.WaitStatus(t, rec.ID, 30*time.Second, queue.StatusAnswered)
		s.StartWorker() // a survivor
		first.Kill()
		killedAt := time.Now()
		t.Logf("worker %d SIGKILLed %s after the answer", first.PID(), killedAt.Sub(rec.EnqueuedAt).Round(time.Millisecond))

		c, ok := s.Sim.WaitCall(numAnswer, 40*time.Second, func(c sim.CallRecord) bool { return c.HungUpBy == "caller" })
		if !ok {
			t.Errorf("carrier saw no BYE for the call to %s within 40s of the worker's death: the call stays up at the carrier", numAnswer)
		} else {
			t.Logf("carrier got BYE %s after the kill", c.EndedAt.Sub(killedAt).Round(time.Millisecond))
		}
		got, err := s.TryWaitRecord(rec.ID, 150*time.Second, func(r *queue.Record) bool { return Terminal(r.Status) })
		if err != nil {
			t.Fatalf("message %s: %v", rec.ID, err)
		}
		rec = got
		if rec.Status != StatusInterrupted || rec.BillableMS <= 0 {
			t.Errorf("record ends %s with billable_ms %d (reason %q); want %s with billable_ms > 0",
				rec.Status, rec.BillableMS, rec.Reason, StatusInterrupted)
		}
		s.Sim.Flush() // ends the call if nobody did, so it is counted
		s.CheckInvites(t, numAnswer, 1)
		s.CheckCallbacks(t, rec)
		s.CheckCDRs(t, []*queue.Record{rec})
	})
}

func absMS(d int64) int64 {
	if d < 0 {
		return -d
	}
	return d
}
