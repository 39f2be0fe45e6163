package queue

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// TestRedialAttemptsAreAtMostOnce walks a message through a busy attempt 1,
// a scheduled redial, and attempt 2, with redeliveries of both tasks racing
// at every step: each attempt is claimed exactly once and a stale attempt
// never dials.
func TestRedialAttemptsAreAtMostOnce(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	rec, err := c.SendTTS(ctx, TTSRequest{To: "+8613800138001", TemplateID: "noparam", PlayTimes: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := rec.ID

	// Attempt 2 cannot be claimed before attempt 1 was.
	if out, _, err := c.Claim(ctx, id, 2); err != nil || out != AlreadyFinished {
		t.Fatalf("claim 2 of a queued first attempt: %v %v, want AlreadyFinished", out, err)
	}
	if out, _, err := c.Claim(ctx, id, 1); err != nil || out != Claimed {
		t.Fatalf("claim attempt 1: %v %v", out, err)
	}
	// A redial task that runs while attempt 1 is in its call must wait, not dial or spoil attempt 1.
	if out, r, err := c.Claim(ctx, id, 2); err != nil || out != AttemptNotDue || r.Status != StatusDialing {
		t.Fatalf("claim 2 during attempt 1: %v %v (%s), want AttemptNotDue and attempt 1 untouched", out, err, r.Status)
	}
	// Redeliveries of attempt 1 racing: none dials (the first marks the call unknown).
	if n := claimRace(t, c, id, 1, 8); n != 0 {
		t.Fatalf("redelivered attempt 1 claimed %d times, want 0", n)
	}

	at := time.Now().Add(time.Hour)
	if err := c.EnqueueRedial(ctx, rec.Message, 2, at); err != nil {
		t.Fatal(err)
	}
	if err := c.EnqueueRedial(ctx, rec.Message, 2, at); err != nil {
		t.Fatalf("enqueue the same redial twice: %v, want no error", err)
	}
	r1 := &Record{Message: rec.Message, Attempt: 1, Status: StatusBusy, SIPCode: 486, SIPReason: "Busy Here",
		Reason: "busy", Trunk: "a", CallID: "c1", InviteAt: time.Now(), RingingAt: time.Now()}
	tries := []Attempt{{Attempt: 1, Try: 1, Trunk: "a", CallID: "c1", Status: StatusBusy, SIPCode: 486}}
	if err := c.FinishAttempt(ctx, r1, tries, &NextAttempt{Attempt: 2, At: at, Reason: "busy; redial 2 of 2"}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get(ctx, id)
	if got.Status != StatusQueued || got.Attempt != 1 || got.Reason != "busy; redial 2 of 2" {
		t.Fatalf("after a redialable attempt 1: %s attempt %d (%s), want queued attempt 1", got.Status, got.Attempt, got.Reason)
	}
	// Writing attempt 1 again (a retried finish) is refused: it is no longer in a call.
	if err := c.FinishAttempt(ctx, r1, tries, nil); err == nil {
		t.Fatal("second finish of attempt 1 succeeded")
	}
	// A late redelivery of attempt 1 does nothing.
	if out, _, err := c.Claim(ctx, id, 1); err != nil || out != AlreadyFinished {
		t.Fatalf("redelivered attempt 1: %v %v, want AlreadyFinished", out, err)
	}
	// Attempt 2 and its redeliveries racing: exactly one dials.
	if n := claimRace(t, c, id, 2, 8); n != 1 {
		t.Fatalf("attempt 2 claimed %d times, want 1", n)
	}
	got, _ = c.Get(ctx, id)
	if got.Status != StatusUnknown || got.Attempt != 2 || got.SIPCode != 0 || got.CallID != "" || !got.RingingAt.IsZero() {
		t.Errorf("attempt 2 after racing redeliveries: %+v, want unknown attempt 2 without attempt 1's outcome", got)
	}
	if out, _, err := c.Claim(ctx, id, 2); err != nil || out != AlreadyFinished {
		t.Fatalf("another redelivery of attempt 2: %v %v, want AlreadyFinished", out, err)
	}
	// Its real outcome replaces unknown.
	r2 := &Record{Message: rec.Message, Attempt: 2, Status: StatusCompleted, SIPCode: 200, Trunk: "b", CallID: "c2", BillableMS: 1500}
	if err := c.FinishAttempt(ctx, r2, []Attempt{{Attempt: 2, Try: 1, Trunk: "b", CallID: "c2", Status: StatusCompleted, SIPCode: 200}}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = c.Get(ctx, id)
	if got.Status != StatusCompleted || got.Attempt != 2 || got.BillableMinutes != 1 {
		t.Fatalf("final record %s attempt %d minutes %d, want completed attempt 2, 1 minute", got.Status, got.Attempt, got.BillableMinutes)
	}
	atts, err := c.Attempts(ctx, id)
	if err != nil || len(atts) != 2 || atts[0].Status != StatusBusy || atts[1].Status != StatusCompleted || atts[1].Attempt != 2 {
		t.Fatalf("attempts = %+v (%v), want busy then completed", atts, err)
	}
	cdrs, _ := c.CDRs(ctx, "", 10)
	var statuses []Status
	for _, x := range cdrs {
		statuses = append(statuses, x.Status)
	}
	// unknown (lost redelivery), busy (attempt 1), unknown (lost redelivery), completed (attempt 2).
	want := []Status{StatusUnknown, StatusBusy, StatusUnknown, StatusCompleted}
	if len(statuses) != len(want) || statuses[1] != StatusBusy || statuses[3] != StatusCompleted {
		t.Errorf("CDRs %v, want %v: one per outcome written", statuses, want)
	}
	// One redial task, with its attempt in the payload.
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(QueueNotify, RedialTaskID(id, 2))
	if err != nil {
		t.Fatal(err)
	}
	m, n, err := DecodeTask(info.Payload)
	if err != nil || n != 2 || m.ID != id {
		t.Fatalf("redial payload: %+v attempt %d (%v)", m, n, err)
	}
	if _, n, _ := DecodeTask(mustMarshal(t, rec.Message)); n != 1 {
		t.Fatalf("a first-attempt payload decodes as attempt %d", n)
	}
}

// claimRace runs n concurrent claims of attempt and returns how many won.
func claimRace(t *testing.T, c *Client, id string, attempt, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := c.Claim(context.Background(), id, attempt)
			if err != nil {
				t.Error(err)
			}
			if out == Claimed {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return won
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
