package callback_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vms-project/vms/api/sign"
	"github.com/vms-project/vms/callback"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/netguard"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/internal/testutil"
	"github.com/vms-project/vms/queue"
)

const key = "shop-key-0123456789abcdef"

// receiver is an upstream's callback endpoint that verifies every POST.
type receiver struct {
	t       *testing.T
	mu      sync.Mutex
	got     []callback.Report
	nonces  map[string]bool
	tries   map[string]int // by event id
	respond func(n int) int
	srv     *httptest.Server
}

func newReceiver(t *testing.T, respond func(n int) int) *receiver {
	r := &receiver{t: t, nonces: map[string]bool{}, tries: map[string]int{}, respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	h := req.Header
	ts, _ := strconv.ParseInt(h.Get(sign.HeaderTimestamp), 10, 64)
	if h.Get(sign.HeaderAppID) != "shop" ||
		!sign.Valid([]byte(key), h.Get(sign.HeaderSignature), req.Method, req.URL.RequestURI(), h.Get(sign.HeaderTimestamp), h.Get(sign.HeaderNonce), body) ||
		time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		r.t.Errorf("callback signature does not verify: %v", h)
		w.WriteHeader(401)
		return
	}
	var rep callback.Report
	if err := json.Unmarshal(body, &rep); err != nil || rep.EventID != h.Get(sign.HeaderEventID) {
		r.t.Errorf("callback body %s (%v), event id header %q", body, err, h.Get(sign.HeaderEventID))
	}
	r.mu.Lock()
	if r.nonces[h.Get(sign.HeaderNonce)] {
		r.t.Errorf("nonce reused across callback attempts")
	}
	r.nonces[h.Get(sign.HeaderNonce)] = true
	r.tries[rep.EventID]++
	n := r.tries[rep.EventID]
	r.mu.Unlock()
	code := 200
	if r.respond != nil {
		code = r.respond(n)
	}
	if code == 200 {
		r.mu.Lock()
		r.got = append(r.got, rep)
		r.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (r *receiver) reports() []callback.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callback.Report(nil), r.got...)
}

// setup starts the callback service for app shop. Test receivers are on
// 127.0.0.1, so api.callbacks.allow_private_hosts is on unless an edit
// turns it off.
func setup(t *testing.T, url string, events []string, edits ...func(*config.Config)) (*queue.Client, *callback.Service) {
	t.Helper()
	return start(t, url, events, nil, edits...)
}

// start is setup with callback hosts resolved by res (nil: the system's).
func start(t *testing.T, url string, events []string, res *net.Resolver, edits ...func(*config.Config)) (*queue.Client, *callback.Service) {
	t.Helper()
	rs := redistest.Start(t)
	cfg := config.Defaults()
	cfg.Policy.HMACSecret = "test-secret-0123456789"
	cfg.Redis.URL = rs.URL
	cfg.API.Apps = []config.App{{ID: "shop", Key: key, RateLimit: 10, CallbackURL: url, CallbackEvents: events, Templates: []string{"*"}}}
	cfg.API.Callbacks.InitialBackoff = config.Duration(200 * time.Millisecond)
	cfg.API.Callbacks.Timeout = config.Duration(500 * time.Millisecond)
	cfg.API.Callbacks.RetryFor = config.Duration(time.Minute)
	cfg.API.Callbacks.AllowPrivateHosts = true
	for _, edit := range edits {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := rs.Client(t)
	q := queue.NewClient(rdb, queue.Options{Templates: cfg.TemplateRegistry()})
	t.Cleanup(func() { _ = q.Close() })
	svc, err := callback.New(cfg, rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res != nil {
		callback.SetResolver(svc, res)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Shutdown)
	return q, svc
}

// call walks a message through a whole answered call, as a worker does.
func call(t *testing.T, q *queue.Client, id string) *queue.Record {
	t.Helper()
	ctx := context.Background()
	rec, err := q.SendCode(ctx, queue.CodeRequest{ID: id, To: "+8613800138000", Code: "4821", AppID: "shop", SessionContext: "sess-" + id})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := q.Claim(ctx, queue.Key("shop", id), 1, "w1", "s", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatal(out, err)
	}
	t0 := time.Now().UTC()
	progress(t, q, queue.Key("shop", id), queue.StatusDialing, map[string]string{"invite_at": t0.Format(time.RFC3339Nano), "trunk": "carrier-a", "call_id": "call-" + id})
	progress(t, q, queue.Key("shop", id), queue.StatusRinging, map[string]string{"ringing_at": t0.Add(100 * time.Millisecond).Format(time.RFC3339Nano)})
	progress(t, q, queue.Key("shop", id), queue.StatusAnswered, map[string]string{"answered_at": t0.Add(2 * time.Second).Format(time.RFC3339Nano)})
	rec.Status, rec.Attempt, rec.SIPCode, rec.Trunk, rec.CallID = queue.StatusCompleted, 1, 200, "carrier-a", "call-"+id
	rec.InviteAt, rec.RingingAt, rec.AnsweredAt, rec.EndedAt = t0, t0.Add(100*time.Millisecond), t0.Add(2*time.Second), t0.Add(63*time.Second)
	rec.BillableMS = 61_000
	finish(t, q, "w1", rec)
	return rec
}

// progress and finish record a call's milestones and outcome as the
// worker w1 does (queue.ProgressOp, queue.FinishOp).
func progress(t *testing.T, q *queue.Client, id string, to queue.Status, fields map[string]string) {
	t.Helper()
	if res, err := q.Apply(context.Background(), queue.ProgressOp(id, 1, "w1", to, fields)); err != nil || !res.Applied {
		t.Fatalf("progress %s: %+v %v", to, res, err)
	}
}

func finish(t *testing.T, q *queue.Client, owner string, rec *queue.Record) {
	t.Helper()
	op, err := queue.FinishOp(owner, rec, nil, nil)
	must(t, err)
	if res, err := q.Apply(context.Background(), op); err != nil || !res.Applied {
		t.Fatalf("finish %s: %+v %v", rec.Status, res, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCallbacksDeliveredAndVerified(t *testing.T) {
	rcv := newReceiver(t, nil)
	q, _ := setup(t, rcv.srv.URL+"/vms/status?src=vms", []string{"ringing", "answered", "final"})
	call(t, q, "m-1")
	waitFor(t, 15*time.Second, "three callbacks", func() bool { return len(rcv.reports()) >= 3 })
	time.Sleep(300 * time.Millisecond) // nothing more may come
	got := rcv.reports()
	if len(got) != 3 {
		t.Fatalf("%d callbacks, want 3 (dialing is not subscribed): %+v", len(got), got)
	}
	want := map[string]queue.Status{"ringing": queue.StatusRinging, "answered": queue.StatusAnswered, "final": queue.StatusCompleted}
	for _, r := range got {
		if want[r.Event] != r.Status || r.MessageID != "m-1" || r.SessionContext != "sess-m-1" || r.Attempt != 1 ||
			r.EventID != callback.EventID(queue.Key("shop", "m-1"), r.Status, 1) {
			t.Errorf("callback %+v", r)
		}
		if r.Event == "final" && (r.BillableMS != 61_000 || r.BillableMinutes != 2 || r.SIPCode != 200 || r.EndedAt.IsZero()) {
			t.Errorf("final callback %+v: want 61000 ms, 2 minutes, SIP 200", r)
		}
		if r.Event == "ringing" && (r.BillableMS != 0 || !r.AnsweredAt.IsZero()) {
			t.Errorf("ringing callback reports later facts: %+v", r)
		}
	}
	waitFor(t, 5*time.Second, "delivery state in the record", func() bool {
		rec, _ := q.Get(context.Background(), queue.Key("shop", "m-1"))
		for _, ev := range []string{"ringing", "answered", "final"} {
			if rec.Callbacks[ev].State != queue.CallbackDelivered || rec.Callbacks[ev].Attempts != 1 {
				return false
			}
		}
		return true
	})
}

func TestCallbackRetriedAfter500AndTimeout(t *testing.T) {
	start := time.Now()
	rcv := newReceiver(t, func(n int) int {
		switch n {
		case 1:
			return 500
		case 2:
			time.Sleep(1500 * time.Millisecond) // past the 500 ms timeout
			return 200
		}
		return 200
	})
	q, _ := setup(t, rcv.srv.URL+"/cb", []string{"final"})
	call(t, q, "m-2")
	waitFor(t, 20*time.Second, "the final callback", func() bool { return len(rcv.reports()) >= 1 })
	time.Sleep(time.Second)
	got := rcv.reports()
	// The timed-out attempt answered 200 after vms gave up on it: the
	// receiver may see the event twice and deduplicates on its ID.
	for _, r := range got {
		if r.EventID != callback.EventID(queue.Key("shop", "m-2"), queue.StatusCompleted, 1) || r.Event != "final" {
			t.Errorf("callback %+v", r)
		}
	}
	rcv.mu.Lock()
	tries := rcv.tries[callback.EventID(queue.Key("shop", "m-2"), queue.StatusCompleted, 1)]
	rcv.mu.Unlock()
	if tries != 3 {
		t.Errorf("receiver saw %d attempts, want 3 (500, timeout, 200)", tries)
	}
	waitFor(t, 5*time.Second, "delivered state", func() bool {
		rec, _ := q.Get(context.Background(), queue.Key("shop", "m-2"))
		st := rec.Callbacks["final"]
		return st.State == queue.CallbackDelivered && st.Attempts == 3
	})
	t.Logf("delivered on the third attempt %s after the call ended", time.Since(start).Round(10*time.Millisecond))
}

func TestBackoffDoubles(t *testing.T) {
	f := callback.Backoff(time.Second, 10*time.Second)
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		d := f(n, nil, nil)
		if d < want*9/10 || d > want*11/10 {
			t.Errorf("retry %d: %s, want %s ±10%%", n, d, want)
		}
	}
	if d := f(100, nil, nil); d > 11*time.Second {
		t.Errorf("retry 100: %s, want capped", d)
	}
}

// keyCall walks a message through an answered call in which the callee
// pressed keys, as a worker records it (queue.FinishOp).
func keyCall(t *testing.T, q *queue.Client, id string, keys []queue.KeyPress) *queue.Record {
	t.Helper()
	ctx := context.Background()
	rec, err := q.SendCode(ctx, queue.CodeRequest{ID: id, To: "+8613800138000", Code: "4821", AppID: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := q.Claim(ctx, queue.Key("shop", id), 1, "w1", "s", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatal(out, err)
	}
	t0 := time.Now().UTC()
	progress(t, q, queue.Key("shop", id), queue.StatusDialing, map[string]string{"invite_at": t0.Format(time.RFC3339Nano), "trunk": "carrier-a", "call_id": "call-" + id})
	progress(t, q, queue.Key("shop", id), queue.StatusAnswered, map[string]string{"answered_at": t0.Add(time.Second).Format(time.RFC3339Nano)})
	rec.Status, rec.Attempt, rec.SIPCode = queue.StatusCompleted, 1, 200
	rec.InviteAt, rec.AnsweredAt, rec.EndedAt = t0, t0.Add(time.Second), t0.Add(9*time.Second)
	rec.BillableMS, rec.HungUpBy = 8_000, "caller"
	rec.Keys, rec.Confirmed = keys, len(keys) > 0
	finish(t, q, "w1", rec)
	return rec
}

func TestKeyPressesReported(t *testing.T) {
	rcv := newReceiver(t, nil)
	q, _ := setup(t, rcv.srv.URL+"/cb", []string{"final", "keypress"})
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	keys := []queue.KeyPress{{Key: "1", At: t0.Add(3 * time.Second), Via: "rfc4733"}, {Key: "#", At: t0.Add(4 * time.Second), Via: "info"}}
	keyCall(t, q, "k-1", keys)
	keyCall(t, q, "k-2", nil) // no keys: a final callback, no keypress one

	// The record and the CDR keep the keys.
	rec, err := q.Get(context.Background(), queue.Key("shop", "k-1"))
	if err != nil || len(rec.Keys) != 2 || rec.Keys[1].Key != "#" || !rec.Keys[1].At.Equal(keys[1].At) || !rec.Confirmed {
		t.Fatalf("record keys %+v confirmed=%v (%v)", rec.Keys, rec.Confirmed, err)
	}
	cdrs, err := q.CDRs(context.Background(), "", 10)
	if err != nil || len(cdrs) != 2 || len(cdrs[0].Keys) != 2 {
		t.Fatalf("CDRs %+v (%v), want the first with 2 keys", cdrs, err)
	}

	waitFor(t, 15*time.Second, "three callbacks", func() bool { return len(rcv.reports()) >= 3 })
	time.Sleep(300 * time.Millisecond) // nothing more may come
	got := map[string]callback.Report{}
	for _, r := range rcv.reports() {
		k := r.MessageID + "/" + r.Event
		if _, dup := got[k]; dup {
			t.Errorf("%s reported twice", k)
		}
		got[k] = r
	}
	if len(got) != 3 {
		t.Fatalf("callbacks %v, want k-1/final, k-1/keypress, k-2/final", got)
	}
	checkKeys := func(r callback.Report) {
		t.Helper()
		if r.DTMF != "1#" || len(r.Keys) != 2 || r.Keys[0].Key != "1" || r.Keys[0].Via != "rfc4733" ||
			!r.Keys[0].At.Equal(keys[0].At) || !r.Keys[1].At.Equal(keys[1].At) || !r.Confirmed || r.OptedOut {
			t.Errorf("%s callback keys: dtmf %q keys %+v confirmed %v", r.Event, r.DTMF, r.Keys, r.Confirmed)
		}
	}
	fin := got["k-1/final"]
	checkKeys(fin)
	if fin.EventID != callback.EventID(queue.Key("shop", "k-1"), queue.StatusCompleted, 1) || !fin.Final {
		t.Errorf("final %+v", fin)
	}
	kp := got["k-1/keypress"]
	checkKeys(kp)
	if kp.EventID != callback.KeypressEventID(queue.Key("shop", "k-1"), 1) || kp.EventID == fin.EventID || kp.Final ||
		kp.Status != queue.StatusCompleted || kp.Attempt != 1 || !kp.OccurredAt.Equal(keys[1].At) || kp.AnsweredAt.IsZero() {
		t.Errorf("keypress %+v", kp)
	}
	if r := got["k-2/final"]; r.DTMF != "" || r.Keys != nil {
		t.Errorf("k-2 had no keys, its final callback says %q %+v", r.DTMF, r.Keys)
	}
	waitFor(t, 5*time.Second, "keypress delivery state in the record", func() bool {
		rec, _ := q.Get(context.Background(), queue.Key("shop", "k-1"))
		st := rec.Callbacks["keypress"]
		return st.State == queue.CallbackDelivered && st.EventID == kp.EventID
	})
}

// TestKeypressOnceAcrossRewrittenOutcome: a call first recorded unknown
// (the worker was lost) and then given its late real outcome has two final
// state changes but one keypress event, under one ID.
func TestKeypressOnceAcrossRewrittenOutcome(t *testing.T) {
	rcv := newReceiver(t, nil)
	q, _ := setup(t, rcv.srv.URL+"/cb", []string{"keypress"})
	ctx := context.Background()
	rec, err := q.SendCode(ctx, queue.CodeRequest{ID: "u-1", To: "+8613800138000", Code: "4821", AppID: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := q.Claim(ctx, queue.Key("shop", "u-1"), 1, "w1", "s", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatal(out, err)
	}
	lost := *rec
	lost.Status, lost.Attempt, lost.Reason = queue.StatusUnknown, 1, "worker lost"
	// The reaper of worker w2 found w1 dead before its INVITE was recorded.
	if tk, err := q.Takeover(ctx, queue.Key("shop", "u-1"), 1, "w1", "w2"); err != nil || tk == nil {
		t.Fatal("takeover", err)
	}
	finish(t, q, "w2", &lost)
	t0 := time.Now().UTC()
	rec.Status, rec.Attempt, rec.SIPCode, rec.AnsweredAt, rec.EndedAt, rec.BillableMS = queue.StatusCompleted, 1, 200, t0, t0.Add(5*time.Second), 5000
	rec.Keys = []queue.KeyPress{{Key: "9", At: t0.Add(2 * time.Second), Via: "rfc4733"}}
	rec.OptedOut = true
	finish(t, q, "w1", rec)
	waitFor(t, 15*time.Second, "the keypress callback", func() bool { return len(rcv.reports()) >= 1 })
	time.Sleep(time.Second) // the second final change is relayed too; it must not report again
	got := rcv.reports()
	if len(got) != 1 || got[0].Event != "keypress" || got[0].DTMF != "9" || !got[0].OptedOut ||
		got[0].EventID != callback.KeypressEventID(queue.Key("shop", "u-1"), 1) {
		t.Fatalf("callbacks %+v, want one keypress event with key 9", got)
	}
}

// dialing enqueues message id with its own callback URL (through
// queue.Client, which checks only the URL's form, as a Go upstream would)
// and records that a worker dials it: the dialing event is due.
func dialing(t *testing.T, q *queue.Client, id, url string) {
	t.Helper()
	ctx := context.Background()
	if _, err := q.SendCode(ctx, queue.CodeRequest{ID: id, To: "+8613800138000", Code: "4821", AppID: "shop", CallbackURL: url}); err != nil {
		t.Fatal(err)
	}
	if out, _, err := q.Claim(ctx, queue.Key("shop", id), 1, "w1", "s", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatal(out, err)
	}
	progress(t, q, queue.Key("shop", id), queue.StatusDialing, map[string]string{"invite_at": time.Now().UTC().Format(time.RFC3339Nano)})
}

// callbackState waits until message id's dialing callback has had an
// attempt and returns its state.
func callbackState(t *testing.T, q *queue.Client, id string, done func(queue.CallbackState) bool) queue.CallbackState {
	t.Helper()
	var st queue.CallbackState
	waitFor(t, 15*time.Second, id+"'s callback state", func() bool {
		rec, err := q.Get(context.Background(), queue.Key("shop", id))
		if err != nil {
			return false
		}
		st = rec.Callbacks["dialing"]
		return st.Attempts > 0 && done(st)
	})
	return st
}

// TestCallbackToInsideRefused: without api.callbacks.allow_private_hosts a
// callback never reaches an inside address, whether the URL names it or a
// public-looking host name resolves to it (DNS answers 127.0.0.1: refused
// when connecting); the record says only "refused: address not allowed",
// and it is not retried.
func TestCallbackToInsideRefused(t *testing.T) {
	rcv := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rcv.srv.Listener.Addr().String())
	res := testutil.FakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	q, _ := start(t, "", []string{"dialing"}, res, func(c *config.Config) { c.API.Callbacks.AllowPrivateHosts = false })
	cases := map[string]string{
		"rebound":    "http://hooks.shop.example:" + port + "/cb", // passes every URL check; refused when dialing
		"localhost":  "http://localhost:" + port + "/cb",
		"by-address": "http://127.0.0.1:" + port + "/cb",
		"mapped":     "http://[::ffff:127.0.0.1]:" + port + "/cb",
		"metadata":   "http://169.254.169.254/latest/meta-data/",
	}
	if err := netguard.CheckURL(cases["rebound"], false, nil); err != nil {
		t.Fatalf("the rebound name is refused before dialing (%v): this test would not test the dialer", err)
	}
	for id, url := range cases {
		dialing(t, q, id, url)
	}
	for id := range cases {
		st := callbackState(t, q, id, func(st queue.CallbackState) bool { return st.State == queue.CallbackFailed })
		if st.LastError != "refused: address not allowed" || st.Attempts != 1 || st.LastHTTP != 0 {
			t.Errorf("%s: callback state %+v, want failed after 1 attempt, refused: address not allowed", id, st)
		}
	}
	time.Sleep(500 * time.Millisecond) // a retry would come after 200 ms
	rcv.mu.Lock()
	n := len(rcv.tries)
	rcv.mu.Unlock()
	if n != 0 {
		t.Fatalf("the receiver on 127.0.0.1 got %d callbacks", n)
	}
	for id := range cases {
		if rec, _ := q.Get(context.Background(), queue.Key("shop", id)); rec.Callbacks["dialing"].Attempts != 1 {
			t.Errorf("%s: %d attempts, want 1 (a refusal is not retried)", id, rec.Callbacks["dialing"].Attempts)
		}
	}
}

// TestCallbackAllowedWithOptIn: the same inside receiver, reached by a name
// that resolves to it, gets the callback once the operator opts in.
func TestCallbackAllowedWithOptIn(t *testing.T) {
	rcv := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rcv.srv.Listener.Addr().String())
	q, _ := start(t, "", []string{"dialing"}, testutil.FakeDNS(t, netip.MustParseAddr("127.0.0.1"))) // allow_private_hosts: true
	dialing(t, q, "in-1", "http://hooks.shop.example:"+port+"/cb")
	st := callbackState(t, q, "in-1", func(st queue.CallbackState) bool { return st.State == queue.CallbackDelivered })
	if st.LastHTTP != 200 || len(rcv.reports()) != 1 {
		t.Fatalf("state %+v, %d reports", st, len(rcv.reports()))
	}
}

// TestCallbackHostsList: an app with callback_hosts posts only to them,
// whatever the message names.
func TestCallbackHostsList(t *testing.T) {
	rcv := newReceiver(t, nil)
	q, _ := setup(t, "", []string{"dialing"}, func(c *config.Config) { c.API.Apps[0].CallbackHosts = []string{"*.hooks.example.com"} })
	dialing(t, q, "h-1", rcv.srv.URL+"/cb")
	st := callbackState(t, q, "h-1", func(st queue.CallbackState) bool { return st.State == queue.CallbackFailed })
	if st.LastError != "refused: host not allowed" || len(rcv.reports()) != 0 {
		t.Fatalf("state %+v, %d reports; want refused: host not allowed and nothing posted", st, len(rcv.reports()))
	}
}

// TestCallbackRedirectNotFollowed: a 3xx is a failed attempt; its Location
// is never requested. Receiver errors are recorded as just their status.
func TestCallbackRedirectNotFollowed(t *testing.T) {
	target := newReceiver(t, nil)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.srv.URL+"/stolen", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(down.Close)
	q, _ := setup(t, "", []string{"dialing"})
	dialing(t, q, "r-1", redirect.URL+"/cb")
	dialing(t, q, "r-2", down.URL+"/cb")
	st := callbackState(t, q, "r-1", func(st queue.CallbackState) bool { return st.Attempts >= 2 })
	if st.State != queue.CallbackPending || st.LastHTTP != 302 || st.LastError != "HTTP 302 (redirects are not followed)" {
		t.Errorf("redirected callback state %+v", st)
	}
	target.mu.Lock()
	n := len(target.tries)
	target.mu.Unlock()
	if n != 0 {
		t.Errorf("the redirect target got %d callbacks", n)
	}
	st = callbackState(t, q, "r-2", func(queue.CallbackState) bool { return true })
	if st.State != queue.CallbackPending || st.LastHTTP != 503 || st.LastError != "HTTP 503" {
		t.Errorf("503 callback state %+v", st)
	}
}
