package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func mustApply(t *testing.T, c *Client, op Op) OpResult {
	t.Helper()
	r, err := c.Apply(context.Background(), op)
	if err != nil {
		t.Fatalf("%s: %v", op.Name, err)
	}
	return r
}

func finishOp(t *testing.T, owner string, r *Record, next *NextAttempt) Op {
	t.Helper()
	op, err := FinishOp(owner, r, []Attempt{{Attempt: r.Attempt, Try: 1, Trunk: "a", Status: r.Status}}, next)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// model is the reference state machine: what state.lua must do, written
// plainly in Go.
type model struct {
	status  Status
	attempt int
	owner   string
}

func (m *model) incall() bool {
	return m.status == StatusDialing || m.status == StatusRinging || m.status == StatusAnswered
}

var progressOrder = map[Status]int{StatusDialing: 1, StatusRinging: 2, StatusAnswered: 3}

// step is one random action of the model-based test.
type step struct {
	kind    string // claim progress finish cancel takeover abandon
	attempt int
	owner   string
	to      Status // progress target, finish outcome
	other   string // takeover: the new owner
	redial  bool
}

func (s step) String() string {
	return fmt.Sprintf("%s(a=%d %s %s %s redial=%v)", s.kind, s.attempt, s.owner, s.to, s.other, s.redial)
}

// apply runs s on the model and returns whether it takes effect (claim:
// whether it is Claimed).
func (m *model) apply(s step) bool {
	switch s.kind {
	case "claim":
		if m.status == StatusQueued && m.attempt == s.attempt-1 {
			m.status, m.attempt, m.owner = StatusDialing, s.attempt, s.owner
			return true
		}
	case "progress":
		if m.attempt != s.attempt || m.owner != s.owner || !m.incall() {
			return false
		}
		if progressOrder[m.status] > progressOrder[s.to] || (m.status == s.to && s.to != StatusDialing) {
			return true // a replay
		}
		m.status = s.to
		return true
	case "finish":
		if m.attempt != s.attempt || !((m.incall() && m.owner == s.owner) || (m.status == StatusUnknown && s.to != StatusUnknown)) {
			return false
		}
		redial := s.redial && m.status != StatusUnknown
		m.status = s.to
		if redial {
			m.status = StatusQueued
		}
		return true
	case "cancel":
		if m.status == StatusQueued {
			m.status = StatusCanceled
			return true
		}
	case "abandon":
		if m.status == StatusQueued || (m.status == StatusDialing && m.owner == s.owner) {
			m.status = StatusBlocked
			return true
		}
	case "takeover":
		if m.incall() && m.attempt == s.attempt && m.owner == s.owner {
			m.owner = s.other
			return true
		}
	}
	return false
}

func randomStep(r *rand.Rand) step {
	owners := []string{"w1", "w2", "w3"}
	s := step{attempt: 1 + r.IntN(3), owner: owners[r.IntN(3)], other: owners[r.IntN(3)]}
	switch n := r.IntN(100); {
	case n < 30:
		s.kind = "claim"
	case n < 55:
		s.kind = "progress"
		s.to = []Status{StatusDialing, StatusRinging, StatusAnswered}[r.IntN(3)]
	case n < 85:
		s.kind = "finish"
		s.to = []Status{StatusCompleted, StatusBusy, StatusNoAnswer, StatusUnknown, StatusInterrupted}[r.IntN(5)]
		s.redial = s.to == StatusBusy && r.IntN(2) == 0
	case n < 90:
		s.kind = "cancel"
	case n < 93:
		s.kind = "abandon"
	default:
		s.kind = "takeover"
	}
	return s
}

// TestStateMachineAgainstModel drives random interleavings of claim,
// progress, finish (with and without a redial), cancel, abandon, takeover
// and redelivered claims through state.lua and a reference model, and
// checks what must always hold.
func TestStateMachineAgainstModel(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for msg := range 40 {
		rec, err := c.SendTTS(ctx, TTSRequest{To: "+8613800138001", TemplateID: "noparam", PlayTimes: 1})
		if err != nil {
			t.Fatal(err)
		}
		id := rec.ID
		m := &model{status: StatusQueued}
		claims := map[int]int{}
		finished := 0
		var history []string
		for range 60 {
			s := randomStep(r)
			prev := m.status
			want := m.apply(s)
			history = append(history, s.String())
			var got bool
			switch s.kind {
			case "claim":
				// Each delivery has a slot member of its own, as in the worker.
				out, _, err := c.Claim(ctx, id, s.attempt, s.owner, fmt.Sprintf("slot-%d", len(history)), Durability{})
				if err != nil {
					t.Fatal(err)
				}
				got = out == Claimed
				if got {
					claims[s.attempt]++
				}
			case "progress":
				got = mustApply(t, c, ProgressOp(id, s.attempt, s.owner, s.to, map[string]string{"call_id": "c"})).Applied
			case "finish":
				var next *NextAttempt
				if s.redial {
					next = &NextAttempt{Attempt: s.attempt + 1, At: time.Now(), Reason: "busy; redial"}
				}
				got = mustApply(t, c, finishOp(t, s.owner, &Record{Message: Message{ID: id}, Attempt: s.attempt, Status: s.to, BillableMS: 1000}, next)).Applied
				if got {
					finished++
				}
			case "cancel":
				// Cancel also succeeds on a message already canceled.
				_, err := c.Cancel(ctx, id)
				got, want = err == nil, want || prev == StatusCanceled
			case "abandon":
				res, err := c.Apply(ctx, endOp(id, []Status{StatusQueued, StatusDialing}, StatusBlocked, s.owner, map[string]string{"reason": "blocked"}))
				if err != nil {
					t.Fatal(err)
				}
				got = res.Applied
			case "takeover":
				tk, err := c.Takeover(ctx, id, s.attempt, s.owner, s.other)
				if err != nil {
					t.Fatal(err)
				}
				got = tk != nil
			}
			if got != want {
				t.Fatalf("message %d: %s: applied %v, model says %v\nhistory: %s", msg, s, got, want, strings.Join(history, " "))
			}
			f, _ := rdb.HMGet(ctx, recordKey(id), "status", "attempt", "owner").Result()
			st, _ := f[0].(string)
			att, _ := strconv.Atoi(fmt.Sprint(f[1]))
			if Status(st) != m.status || att != m.attempt || (m.incall() && f[2] != m.owner) {
				t.Fatalf("message %d after %s: record %v, model %+v\nhistory: %s", msg, s, f, *m, strings.Join(history, " "))
			}
		}
		for a, n := range claims {
			if n > 1 {
				t.Fatalf("message %d: attempt %d claimed %d times", msg, a, n)
			}
		}
		checkStreams(t, c, rdb, id, finished)
	}
}

// checkStreams checks a message's event stream against the outbox and its
// CDRs: every event is in the outbox in order, one CDR per finished
// attempt, and nothing follows a terminal state but the real outcome of an
// unknown one.
func checkStreams(t *testing.T, c *Client, rdb *redis.Client, id string, finished int) {
	t.Helper()
	ctx := context.Background()
	events, err := rdb.XRange(ctx, eventsKey(id), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := rdb.XRange(ctx, outboxKey(shardOf(id)), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var mine []redis.XMessage
	for _, e := range outbox {
		if e.Values["message_id"] == id {
			mine = append(mine, e)
		}
	}
	if len(mine) != len(events) {
		t.Fatalf("message %s: %d events, %d outbox entries", id, len(events), len(mine))
	}
	for i, e := range events {
		for k, v := range e.Values {
			if mine[i].Values[k] != v {
				t.Fatalf("message %s: event %d %v, outbox entry %v", id, i, e.Values, mine[i].Values)
			}
		}
	}
	terminalAt := -1
	for i, e := range events {
		st := Status(fmt.Sprint(e.Values["status"]))
		redialed := i+1 < len(events) && events[i+1].Values["status"] == string(StatusQueued)
		if terminalAt >= 0 {
			prev := Status(fmt.Sprint(events[terminalAt].Values["status"]))
			if prev != StatusUnknown || st == StatusUnknown || !st.Terminal() {
				t.Fatalf("message %s: event %d %s after terminal %s", id, i, st, prev)
			}
		}
		if st.Terminal() && !redialed {
			terminalAt = i
		}
	}
	n := 0
	for s := range shards {
		cdrs, _ := rdb.XRange(ctx, cdrKey(s), "-", "+").Result()
		for _, x := range cdrs {
			if strings.Contains(fmt.Sprint(x.Values["message"]), `"id":"`+id+`"`) {
				n++
			}
		}
	}
	if n != finished {
		t.Fatalf("message %s: %d CDRs, %d finished attempts", id, n, finished)
	}
}

// TestRedialAttemptsAreAtMostOnce walks a message through a busy attempt 1,
// a scheduled redial, and attempt 2, with redeliveries racing at every
// step: each attempt is claimed exactly once and a stale attempt never dials.
func TestRedialAttemptsAreAtMostOnce(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	rec, err := c.SendTTS(ctx, TTSRequest{To: "+8613800138001", TemplateID: "noparam", PlayTimes: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := rec.ID
	if n := claimRace(t, c, id, 1, 8); n != 1 {
		t.Fatalf("attempt 1 claimed %d times, want 1", n)
	}
	if out, _, _ := c.Claim(ctx, id, 2, "w9", "s", Durability{}); out != AttemptNotDue {
		t.Fatalf("claim 2 during attempt 1: %v, want AttemptNotDue", out)
	}
	if out, _, _ := c.Claim(ctx, id, 1, "w9", "s", Durability{}); out != InCall {
		t.Fatalf("redelivered attempt 1 during its call: %v, want InCall", out)
	}
	owner := ownerOf(t, rdb, id)
	slot, _ := rdb.HGet(ctx, recordKey(id), "slot").Result()
	// The winner's claim sent again (go-redis retrying after a lost reply)
	// is still its own; once its INVITE is recorded it is not.
	if out, _, _ := c.Claim(ctx, id, 1, owner, slot, Durability{}); out != Claimed {
		t.Fatalf("the winner's retried claim: %v, want Claimed", out)
	}
	mustApply(t, c, ProgressOp(id, 1, owner, StatusDialing, map[string]string{"invite_at": formatTime(time.Now())}))
	if out, _, _ := c.Claim(ctx, id, 1, owner, slot, Durability{}); out != InCall {
		t.Fatalf("a retried claim after the INVITE: %v, want InCall", out)
	}
	if mustApply(t, c, UnclaimOp(id, 1, owner, slot, "x")).Applied {
		t.Fatal("unclaim after the INVITE was applied")
	}
	at := time.Now().Add(time.Hour)
	if err := c.EnqueueRedial(ctx, rec.Message, 2, at); err != nil {
		t.Fatal(err)
	}
	if err := c.EnqueueRedial(ctx, rec.Message, 2, at); err != nil {
		t.Fatalf("enqueue the same redial twice: %v, want no error", err)
	}
	r1 := &Record{Message: rec.Message, Attempt: 1, Status: StatusBusy, SIPCode: 486, Reason: "busy"}
	if !mustApply(t, c, finishOp(t, owner, r1, &NextAttempt{Attempt: 2, At: at, Reason: "busy; redial 2 of 2"})).Applied {
		t.Fatal("finish of attempt 1 not applied")
	}
	if mustApply(t, c, finishOp(t, owner, r1, nil)).Applied {
		t.Fatal("a second finish of attempt 1 (a journal replay) was applied again")
	}
	if n := claimRace(t, c, id, 1, 4); n != 0 {
		t.Fatalf("a late redelivery of attempt 1 claimed %d times", n)
	}
	if n := claimRace(t, c, id, 2, 8); n != 1 {
		t.Fatalf("attempt 2 claimed %d times, want 1", n)
	}
	got, _ := c.Get(ctx, id)
	if got.Status != StatusDialing || got.Attempt != 2 || got.SIPCode != 0 {
		t.Errorf("attempt 2: %+v, want dialing without attempt 1's outcome", got)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(QueueNotify, taskID(id, 2))
	if err != nil {
		t.Fatal(err)
	}
	gotID, n, err := DecodeTask(info.Payload)
	if err != nil || n != 2 || gotID != id || strings.Contains(string(info.Payload), rec.To) {
		t.Fatalf("redial payload %s: %s attempt %d (%v), want the ID and attempt only", info.Payload, gotID, n, err)
	}
}

func ownerOf(t *testing.T, rdb *redis.Client, id string) string {
	t.Helper()
	o, err := rdb.HGet(context.Background(), recordKey(id), "owner").Result()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// claimRace runs n concurrent claims of attempt by n owners and returns how many won.
func claimRace(t *testing.T, c *Client, id string, attempt, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := c.Claim(context.Background(), id, attempt, "w"+strconv.Itoa(i), "s", Durability{})
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

// TestCodeIsForgottenAtTheEnd: once a code call is terminal, no copy of
// the code is left in Redis: not in the record, its CDR or its task.
func TestCodeIsForgottenAtTheEnd(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	rec, err := c.SendCode(ctx, CodeRequest{To: "+8613800138000", Code: "918273"})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := c.Claim(ctx, rec.ID, 1, "w1", "s", Durability{}); err != nil || out != Claimed {
		t.Fatal(out, err)
	}
	mustApply(t, c, finishOp(t, "w1", &Record{Message: rec.Message, Attempt: 1, Status: StatusCompleted, BillableMS: 9000}, nil))
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		dump, _ := rdb.Dump(ctx, k).Result()
		if strings.Contains(dump, "918273") {
			t.Errorf("key %s still holds the code", k)
		}
	}
	got, err := c.Get(ctx, rec.ID)
	if err != nil || got.Code != "" || got.Status != StatusCompleted || got.To != rec.To {
		t.Fatalf("record after the call: %+v %v", got, err)
	}
	// The CDR and the event stream carry the masked number, never the number.
	cdrs, err := c.CDRs(ctx, "", 10)
	if err != nil || len(cdrs) != 1 || cdrs[0].To != MaskNumber(rec.To) {
		t.Fatalf("CDRs %+v %v, want one with the masked number", cdrs, err)
	}
	for _, k := range []string{cdrKey(shardOf(rec.ID)), eventsKey(rec.ID), outboxKey(shardOf(rec.ID))} {
		entries, _ := rdb.XRange(ctx, k, "-", "+").Result()
		for _, e := range entries {
			if strings.Contains(fmt.Sprint(e.Values), "13800138000") {
				t.Errorf("%s holds the number: %v", k, e.Values)
			}
		}
	}
}

// TestNoOrphans: a sender that dies (or loses Redis's reply) between
// creating a record and enqueueing its task leaves no message that is
// never dialled: the sweeper enqueues its task; a retried create of the
// same request succeeds instead of answering "already exists".
func TestNoOrphans(t *testing.T) {
	c, rdb := newTestClient(t)
	ctx := context.Background()
	crash := errors.New("sender crashed")
	c.faultAfterCreate = func() error { return crash }
	_, err := c.SendCode(ctx, CodeRequest{ID: "orphan-1", To: "+8613800138000", Code: "1234"})
	if !errors.Is(err, crash) {
		t.Fatalf("send with a crash after create: %v", err)
	}
	c.faultAfterCreate = nil
	insp := asynq.NewInspectorFromRedisClient(rdb)
	if _, err := insp.GetTaskInfo(QueueCode, "orphan-1"); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatalf("task before the sweep: %v, want none", err)
	}
	if n, err := c.Sweep(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("sweep of a fresh record: %d %v, want it left to its sender", n, err)
	}
	if n, err := c.Sweep(ctx, 0); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want 1", n, err)
	}
	info, err := insp.GetTaskInfo(QueueCode, "orphan-1")
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("task after the sweep: %+v %v", info, err)
	}
	if n, _ := c.Sweep(ctx, 0); n != 0 {
		t.Fatalf("second sweep looked at %d records, want 0", n)
	}

	// A create whose reply was lost is retried by go-redis with the same
	// arguments: it must find its own record.
	m := Message{ID: "retry-1", Kind: KindCode, To: "+8613800138000", Code: "1234", PlayTimes: 1, AppID: DefaultApp}
	op := newOp("create", m.ID, `{"id":"retry-1","kind":"code","to":"+8613800138000","play_times":1,"app_id":"default"}`, "tok-1", "", "+86*******8000", "")
	if !mustApply(t, c, op).Applied || !mustApply(t, c, op).Applied {
		t.Fatal("a retried create of the same request was refused")
	}
	op.Args[1] = "tok-2"
	if mustApply(t, c, op).Applied {
		t.Fatal("another request's create of a taken ID was applied")
	}
}

// TestKeysOfOneCallShareASlot: every key one state.lua call touches
// hashes to one Redis Cluster slot, and the shards spread over the slots.
func TestKeysOfOneCallShareASlot(t *testing.T) {
	slotOf := func(k string) uint16 {
		if i := strings.IndexByte(k, '{'); i >= 0 {
			if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
				k = k[i+1 : i+1+j]
			}
		}
		return crc16(k) % 16384
	}
	for _, id := range []string{"a", "msg-1", "0123456789abcdef", "x{y}z"} {
		keys := messageKeys(id)
		for _, k := range keys {
			if slotOf(k) != slotOf(keys[0]) {
				t.Errorf("message %s: key %s in slot %d, record in %d", id, k, slotOf(k), slotOf(keys[0]))
			}
		}
	}
	// crc16 is Redis's: known values from the cluster specification.
	if crc16("123456789") != 0x31C3 {
		t.Fatalf("crc16(123456789) = %x, want 31c3", crc16("123456789"))
	}
	for s := range shards {
		lo, hi := s*16384/shards, (s+1)*16384/shards
		if sl := int(slotOf(outboxKey(s))); sl < lo || sl >= hi {
			t.Errorf("shard %d in slot %d, want [%d, %d)", s, sl, lo, hi)
		}
	}
}
