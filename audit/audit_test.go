package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/internal/redistest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func keyFunc(k []byte) KeyFunc {
	return func(context.Context) ([]byte, error) { return k, nil }
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newLog(t *testing.T) (*Log, *redis.Client) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	clk := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	return New(rdb, keyFunc(testKey), clk.now), rdb
}

func record(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := l.Record(context.Background(), "send.accepted", "app:shop", fmt.Sprintf("m-%d", i), map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func wantOK(t *testing.T, rep Report, err error) {
	t.Helper()
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v; want intact", rep, err)
	}
}

func wantProblem(t *testing.T, rep Report, err error, text string) {
	t.Helper()
	if err != nil || rep.OK || !strings.Contains(strings.Join(rep.Problems, "; "), text) {
		t.Fatalf("verify: %+v, %v; want a problem containing %q", rep, err, text)
	}
}

func checkpoint(t *testing.T, l *Log) Head {
	t.Helper()
	h, rep, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("checkpoint: %v (%+v)", err, rep)
	}
	// What the operator keeps is the JSON; use it as read back.
	body, _ := json.Marshal(h)
	back, err := ParseHead(body)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func headBody(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	s, err := rdb.Get(context.Background(), headKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHeadIsSignedJSON(t *testing.T) {
	l, rdb := newLog(t)
	record(t, l, 3)
	h, err := ParseHead([]byte(headBody(t, rdb)))
	if err != nil || h.Seq != 3 || !h.signedBy(testKey) {
		t.Fatalf("head %+v, %v", h, err)
	}
	if h.signedBy([]byte("another key of sufficient length")) {
		t.Fatal("head verifies under another key")
	}
	// The signing key is derived, not the chain key: the same message
	// under the chain key itself is not the signature.
	if h.Signature == (Head{Seq: h.Seq, Hash: h.Hash, Time: h.Time}).sign(headKeyOf(headKeyOf(testKey))).Signature {
		t.Fatal("unexpected key derivation")
	}
	rep, err := l.Verify(context.Background())
	wantOK(t, rep, err)
	if rep.Head == nil || rep.Head.Seq != 3 || rep.Entries != 3 {
		t.Fatalf("report %+v", rep)
	}
}

// (a) The tail is deleted and the head rewritten to match what is left: with
// an older signed head put back (a replay needs no key), Redis alone cannot
// tell; the checkpoint can. With a head written without the key, verify
// fails on its own.
func TestCheckpointFindsTruncation(t *testing.T) {
	l, rdb := newLog(t)
	ctx := context.Background()
	record(t, l, 5)
	oldHead := headBody(t, rdb)
	record(t, l, 3)
	cp := checkpoint(t, l)
	if cp.Seq != 8 {
		t.Fatalf("checkpoint %+v", cp)
	}
	rep, err := l.VerifyCheckpoint(ctx, cp)
	wantOK(t, rep, err)

	msgs, _ := rdb.XRange(ctx, streamKey, "-", "+").Result()
	for _, m := range msgs[5:] {
		rdb.XDel(ctx, streamKey, m.ID)
	}
	rdb.Set(ctx, headKey, oldHead, 0)
	rep, err = l.Verify(ctx)
	wantOK(t, rep, err) // the replayed head is a genuine one
	rep, err = l.VerifyCheckpoint(ctx, cp)
	wantProblem(t, rep, err, "the log ends at seq 5, but the checkpoint of 2026-03-01T09:00:09Z says it had reached seq 8: entries 6 to 8 were removed from the end")

	// The same head rewritten by hand, without the key.
	var h Head
	_ = json.Unmarshal([]byte(oldHead), &h)
	h.Time = h.Time.Add(time.Hour)
	forged, _ := json.Marshal(h)
	rdb.Set(ctx, headKey, forged, 0)
	rep, err = l.Verify(ctx)
	wantProblem(t, rep, err, "is not signed with this deployment's key")
	// And in the old unsigned form.
	rdb.Set(ctx, headKey, fmt.Sprintf("5 %s", h.Hash), 0)
	rep, err = l.VerifyCheckpoint(ctx, cp)
	wantProblem(t, rep, err, "entries 6 to 8 were removed from the end")
	wantProblem(t, rep, err, "is unsigned")
	// Nothing is appended to a head that does not verify.
	_, err = l.Record(ctx, "send.accepted", "app:shop", "m-x", nil)
	var he *HeadError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "vms audit verify") {
		t.Fatalf("record on an unsigned head: %v", err)
	}
}

// (b) Both keys deleted: an empty log is all Redis shows; the checkpoint
// says it had entries. A log written again from scratch fails too.
func TestCheckpointFindsDeletedLog(t *testing.T) {
	l, rdb := newLog(t)
	ctx := context.Background()
	record(t, l, 4)
	cp := checkpoint(t, l)
	rdb.Del(ctx, streamKey, headKey)
	rep, err := l.Verify(ctx)
	wantOK(t, rep, err) // nothing in Redis tells
	rep, err = l.VerifyCheckpoint(ctx, cp)
	wantProblem(t, rep, err, "the log is empty, but the checkpoint of 2026-03-01T09:00:05Z says it had reached seq 4: the log was deleted")

	record(t, l, 6) // vms goes on writing a new log
	rep, err = l.Verify(ctx)
	wantOK(t, rep, err)
	rep, err = l.VerifyCheckpoint(ctx, cp)
	wantProblem(t, rep, err, "(seq 4) is not the entry the checkpoint of 2026-03-01T09:00:05Z recorded at that sequence: the log was deleted or cut back and written again")
}

// (c) An untouched log with entries appended after the checkpoint passes.
func TestCheckpointAcceptsLaterEntries(t *testing.T) {
	l, _ := newLog(t)
	ctx := context.Background()
	empty := checkpoint(t, l)
	record(t, l, 3)
	cp := checkpoint(t, l)
	record(t, l, 4)
	for _, c := range []Head{empty, cp} {
		rep, err := l.VerifyCheckpoint(ctx, c)
		wantOK(t, rep, err)
		if rep.Entries != 7 {
			t.Fatalf("entries %d", rep.Entries)
		}
	}
	// A checkpoint edited (or signed by another deployment) is refused.
	edited := cp
	edited.Seq = 2
	rep, err := l.VerifyCheckpoint(ctx, edited)
	wantProblem(t, rep, err, "the checkpoint (seq 2")
	other := New(l.rdb, keyFunc([]byte("another key entirely, 32 bytes!!")), nil)
	if _, _, err := other.Checkpoint(ctx); err == nil {
		t.Fatal("another key signs a checkpoint of a log it cannot verify")
	}
}

func TestVerifyWithoutCheckpoint(t *testing.T) {
	l, rdb := newLog(t)
	ctx := context.Background()
	record(t, l, 3)
	msgs, _ := rdb.XRange(ctx, streamKey, "-", "+").Result()

	rdb.XDel(ctx, streamKey, msgs[2].ID)
	rep, err := l.Verify(ctx)
	wantProblem(t, rep, err, "the log ends at sequence 2 but its head says 3: entries were removed from the end")

	rdb.Del(ctx, headKey)
	rep, err = l.Verify(ctx)
	wantProblem(t, rep, err, "the head vms:audit:head is missing but the log holds 2 entries")
	_, err = l.Record(ctx, "x", "", "", nil)
	if !strings.Contains(fmt.Sprint(err), "is missing but the log holds 2 entries") {
		t.Fatalf("record without a head: %v", err)
	}
	rdb.Set(ctx, headKey, "garbage", 0)
	rep, err = l.Verify(ctx)
	wantProblem(t, rep, err, "is not a signed audit head")
}

func TestSignHead(t *testing.T) {
	l, rdb := newLog(t)
	ctx := context.Background()
	record(t, l, 3)
	if _, err := l.SignHead(ctx, nil, "ops"); err == nil || !strings.Contains(err.Error(), "nothing to sign") {
		t.Fatalf("sign-head on an intact log: %v", err)
	}
	cp := checkpoint(t, l)
	// A log written by an older vms: unsigned head.
	h, _ := ParseHead([]byte(headBody(t, rdb)))
	rdb.Set(ctx, headKey, fmt.Sprintf("%d %s", h.Seq, h.Hash), 0)
	if _, err := l.SignHead(ctx, &cp, "ops"); err != nil {
		t.Fatal(err)
	}
	rep, err := l.VerifyCheckpoint(ctx, cp)
	wantOK(t, rep, err)
	if rep.Entries != 4 {
		t.Fatalf("the re-signing is not audited: %+v", rep)
	}
	var last Entry
	_ = l.Scan(ctx, func(e Entry) error { last = e; return nil })
	if last.Type != "audit.head_signed" || last.Actor != "ops" || !strings.Contains(last.Data["problem"], "unsigned") {
		t.Fatalf("last entry %+v", last)
	}
	// A genuine head ahead of the log is the evidence of a truncation:
	// never signed over.
	msgs, _ := rdb.XRange(ctx, streamKey, "-", "+").Result()
	rdb.XDel(ctx, streamKey, msgs[3].ID)
	if _, err := l.SignHead(ctx, nil, "ops"); err == nil || !strings.Contains(err.Error(), "removed from the end") {
		t.Fatalf("sign-head over a truncation: %v", err)
	}
	// Nor is a broken chain.
	rdb.XDel(ctx, streamKey, msgs[1].ID)
	rdb.Del(ctx, headKey)
	if _, err := l.SignHead(ctx, nil, "ops"); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("sign-head over a broken chain: %v", err)
	}
}

func TestCorruptEntriesAreReported(t *testing.T) {
	for name, values := range map[string][]any{
		"not json":     {"e", "{nope"},
		"no field e":   {"x", "1"},
		"extra field":  {"e", "{}", "f", "1"},
		"wrong types":  {"e", `{"seq":"one"}`},
		"unknown key":  {"e", `{"seq":1,"bogus":true}`},
		"trailing":     {"e", `{"seq":1} {}`},
		"huge":         {"e", strings.Repeat("x", MaxEntryBytes+1)},
		"year 99999":   {"e", `{"seq":3,"at":"9999-12-31T23:59:59Z","type":"t","prev":"","hash":""}`},
		"null data":    {"e", `null`},
		"only numbers": {"e", `{"seq":3}`},
	} {
		t.Run(name, func(t *testing.T) {
			l, rdb := newLog(t)
			ctx := context.Background()
			record(t, l, 2)
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: streamKey, Values: values})
			rep, err := l.Verify(ctx)
			if err != nil || rep.OK || rep.Problem == "" || rep.At == "" || rep.Entries != 3 {
				t.Fatalf("verify: %+v, %v", rep, err)
			}
		})
	}
}

func TestConcurrentAppendsKeepTheChain(t *testing.T) {
	l, _ := newLog(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Verify while others append: entries appended during the walk are
	// not taken for a truncation.
	verr := make(chan error, 1)
	go func() {
		defer close(verr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if rep, err := l.Verify(ctx); err != nil || !rep.OK {
				verr <- fmt.Errorf("verify during appends: %+v %v", rep, err)
				return
			}
		}
	}()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if _, err := l.Record(ctx, "t", "", "", nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-verr; err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	wantOK(t, rep, err)
	if rep.Entries != 100 {
		t.Fatalf("entries %d", rep.Entries)
	}
}
