package policy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/templates"
)

// clock is a settable wall clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func at(s string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

type env struct {
	e   *Engine
	q   *queue.Client
	rdb *redis.Client
	clk *clock
	cfg *config.Config
}

func newEnv(t *testing.T, edit func(*config.Config)) *env {
	t.Helper()
	rs := redistest.Start(t)
	cfg := config.Defaults()
	cfg.Redis.URL = rs.URL
	cfg.Policy.HMACSecret = "test-secret-0123456789"
	cfg.Templates = append(cfg.Templates,
		config.Template{ID: "login", Kind: "code", Text: "您的验证码是{1}，五分钟内有效。", Language: "zh", Status: "approved",
			Params: []templates.Param{{As: "digits", MaxLen: 8}}},
		config.Template{ID: "alarm", Text: "Alarm at site {1}: please call the control room.", Language: "en", Status: "approved", Urgent: true},
		config.Template{ID: "survey", Text: "Press 9 to stop these calls. Your order {1} arrived.", Language: "en", Status: "approved",
			KeyActions: map[string]string{"9": "optout"}},
	)
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := rs.Client(t)
	clk := &clock{t: at("2026-03-10 10:00", shanghai)}
	opts := OptionsFromConfig(cfg, nil)
	opts.Now = clk.Now
	e := New(rdb, opts)
	q := queue.NewClient(rdb, queue.Options{Templates: e.Templates(), Policy: e, DefaultLanguage: "en",
		Languages: map[string]bool{"en": true, "zh": true}})
	t.Cleanup(func() { _ = q.Close() })
	return &env{e: e, q: q, rdb: rdb, clk: clk, cfg: cfg}
}

func (v *env) code(to string) (*queue.Record, error) {
	return v.q.SendCode(context.Background(), queue.CodeRequest{To: to, Code: "123456"})
}

func (v *env) tts(to, tmpl string, params ...string) (*queue.Record, error) {
	return v.q.SendTTS(context.Background(), queue.TTSRequest{To: to, TemplateID: tmpl, Params: params})
}

func wantRefused(t *testing.T, err error, code, text string) {
	t.Helper()
	var in *queue.InputError
	if !errors.As(err, &in) || in.Code != code || !strings.Contains(in.Msg, text) {
		t.Fatalf("got %v, want refusal %s containing %q", err, code, text)
	}
}

const num = "+8613800138000"

func TestFrequencyLimitsBoundaries(t *testing.T) {
	v := newEnv(t, nil)
	if _, err := v.code(num); err != nil {
		t.Fatal(err)
	}
	v.clk.Add(29 * time.Second)
	_, err := v.code(num)
	wantRefused(t, err, "frequency_limited", "frequency_limited: 1 calls in 30 s")
	v.clk.Add(time.Second) // exactly 30 s after the first: allowed
	if _, err := v.code(num); err != nil {
		t.Fatalf("call 30 s after the first: %v", err)
	}
	v.clk.Add(time.Minute)
	_, err = v.code(num)
	wantRefused(t, err, "frequency_limited", "frequency_limited: 2 calls in 10 min")
	v.clk.Add(9 * time.Minute) // 10 min after the first
	if _, err := v.code(num); err != nil {
		t.Fatalf("3rd call in a day: %v", err)
	}
	v.clk.Add(11 * time.Minute)
	_, err = v.code(num)
	wantRefused(t, err, "frequency_limited", "frequency_limited: 3 calls in 24 h")
	// Another app has its own count; another number too.
	if _, err := v.q.SendCode(context.Background(), queue.CodeRequest{To: num, Code: "1234", AppID: "shop"}); err != nil {
		t.Fatalf("other app: %v", err)
	}
	if _, err := v.code("+8613800138001"); err != nil {
		t.Fatalf("other number: %v", err)
	}
	// A day after the first call, the window has room again.
	v.clk.Set(at("2026-03-11 10:00", shanghai).Add(time.Second))
	if _, err := v.code(num); err != nil {
		t.Fatalf("next day: %v", err)
	}
	// Refused sends left no record and no task.
	if n, _ := v.rdb.Keys(context.Background(), "vms:{*}:msg:*").Result(); len(n) != 2*6 {
		t.Errorf("%d record keys, want 12 (6 accepted messages)", len(n))
	}
	// The limit keys name no number.
	keys, _ := v.rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		if strings.Contains(k, "13800138000") {
			t.Errorf("redis key %q contains the number", k)
		}
	}
}

func TestQuietHours(t *testing.T) {
	v := newEnv(t, nil)
	v.clk.Set(at("2026-03-10 23:30", shanghai))
	_, err := v.code(num)
	wantRefused(t, err, "quiet_hours", "no code calls between 22:00 and 08:00 in Asia/Shanghai")
	// A notification is deferred across midnight to 08:00 local time.
	rec, err := v.tts(num, "delivery", "Ann", "P1", "2 and 4")
	if err != nil {
		t.Fatal(err)
	}
	want := at("2026-03-11 08:00", shanghai)
	if rec.Status != queue.StatusQueued || !rec.NotBefore.Equal(want) || !strings.Contains(rec.Reason, "quiet_hours: deferred to 08:00 Asia/Shanghai") {
		t.Fatalf("deferred record: %s not_before %s reason %q; want queued until %s", rec.Status, rec.NotBefore, rec.Reason, want)
	}
	// Urgent templates are not deferred.
	rec, err = v.tts("+8613800138009", "alarm", "B7")
	if err != nil || !rec.NotBefore.IsZero() {
		t.Fatalf("urgent: %v, not_before %s", err, rec.NotBefore)
	}
	// The same instant is daytime in New York (UTC-4 in March 2026 after DST):
	// 23:30 Shanghai = 11:30 New York.
	if _, err := v.code("+12125550123"); err != nil {
		t.Fatalf("New York number at 11:30 local: %v", err)
	}
	// 10:30 UTC is 06:30 in New York: deferred to 08:00 New York = 12:00 UTC.
	v.clk.Set(time.Date(2026, 3, 10, 10, 30, 0, 0, time.UTC))
	rec, err = v.tts("+12125550124", "delivery", "Ann", "P1", "2 and 4")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC); !rec.NotBefore.Equal(want) || !strings.Contains(rec.Reason, "America/New_York") {
		t.Fatalf("New York deferral: %s (%q), want %s", rec.NotBefore, rec.Reason, want)
	}
}

func TestWindowNextAllowed(t *testing.T) {
	w := Window{Start: 22 * 60, End: 8 * 60}
	for _, c := range []struct{ now, want string }{
		{"2026-03-10 21:59", "2026-03-10 21:59"},
		{"2026-03-10 22:00", "2026-03-11 08:00"},
		{"2026-03-10 23:59", "2026-03-11 08:00"},
		{"2026-03-11 00:00", "2026-03-11 08:00"},
		{"2026-03-11 07:59", "2026-03-11 08:00"},
		{"2026-03-11 08:00", "2026-03-11 08:00"},
		{"2026-12-31 23:00", "2027-01-01 08:00"},
	} {
		if got := w.NextAllowed(at(c.now, shanghai)); !got.Equal(at(c.want, shanghai)) {
			t.Errorf("NextAllowed(%s) = %s, want %s", c.now, got, c.want)
		}
	}
	day := Window{Start: 12 * 60, End: 14 * 60}
	if got := day.NextAllowed(at("2026-03-10 13:00", shanghai)); !got.Equal(at("2026-03-10 14:00", shanghai)) {
		t.Errorf("same-day window: %s", got)
	}
	// Unknown zone: the fallback.
	if z := Zones("+80012345678", shanghai); len(z) != 1 || z[0] != shanghai {
		t.Errorf("international freephone zones: %v", z)
	}
}

func TestSuppressionAndConsent(t *testing.T) {
	v := newEnv(t, func(c *config.Config) {
		c.Policy.Apps["shop"] = config.PolicyApp{Consent: config.ConsentOptIn}
	})
	ctx := context.Background()
	if err := v.e.Suppress(ctx, "default", num, ""); err != nil {
		t.Fatal(err)
	}
	_, err := v.code(num)
	wantRefused(t, err, "blocked", "suppression list of app default")
	// The opt-out is per app.
	shop := queue.CodeRequest{To: num, Code: "1234", AppID: "shop"}
	_, err = v.q.SendCode(ctx, shop)
	wantRefused(t, err, "no_consent", "app shop calls only numbers that opted in")
	if _, err := v.e.AddConsent(ctx, "shop", num, "signup form", time.Time{}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.q.SendCode(ctx, shop); err != nil {
		t.Fatalf("after consent: %v", err)
	}
	if ok, err := v.e.RemoveConsent(ctx, "shop", num, "test"); !ok || err != nil {
		t.Fatalf("remove consent: %v %v", ok, err)
	}
	v.clk.Add(time.Hour)
	_, err = v.q.SendCode(ctx, shop)
	wantRefused(t, err, "no_consent", "opted in")
	// Global suppression covers every app.
	if _, err := v.e.AddSuppression(ctx, "", "+8613800138002", "complained", "operator", "ops"); err != nil {
		t.Fatal(err)
	}
	_, err = v.q.SendCode(ctx, queue.CodeRequest{To: "+8613800138002", Code: "1234", AppID: "other"})
	wantRefused(t, err, "blocked", "all apps")
	list, _ := v.e.Suppressions(ctx, "")
	if len(list) != 1 || list[0].Number != "+86138****8002" {
		t.Fatalf("global list %+v", list)
	}
	if ok, _ := v.e.RemoveSuppression(ctx, "", "+8613800138002", "ops"); !ok {
		t.Fatal("remove suppression")
	}
	if _, err := v.q.SendCode(ctx, queue.CodeRequest{To: "+8613800138002", Code: "1234", AppID: "other"}); err != nil {
		t.Fatalf("after unsuppress: %v", err)
	}
}

func TestTemplateRulesAtSend(t *testing.T) {
	v := newEnv(t, nil)
	ctx := context.Background()
	_, err := v.tts(num, "delivery", "Ann", "casino", "2 and 4")
	wantRefused(t, err, "banned_word", "parameter 2 contains banned words: casino")
	_, err = v.tts(num, "delivery", "Ann", "www.evil.cn", "2 and 4")
	var in *queue.InputError
	if !errors.As(err, &in) || !strings.Contains(in.Msg, "web address") {
		t.Fatalf("url param: %v", err)
	}
	// An approved template edited is no longer sendable.
	st := v.e.Templates()
	tm, err := st.Template(ctx, "delivery")
	if err != nil || tm.Status != templates.StatusApproved {
		t.Fatalf("seeded delivery: %+v %v", tm, err)
	}
	tm.Text = "Hello {1}, your parcel {2} arrives between {3}."
	if tm, err = st.Put(ctx, tm, "editor"); err != nil || tm.Status != templates.StatusPending || tm.Version != 2 {
		t.Fatalf("edit: %+v %v", tm, err)
	}
	_, err = v.tts(num, "delivery", "Ann", "P1", "2 and 4")
	wantRefused(t, err, "template_not_approved", "pending")
	if _, err := st.Approve(ctx, "delivery", templates.Review{By: "rev", Version: 1}); !errors.Is(err, templates.ErrReview) {
		t.Fatalf("approving a stale version: %v", err)
	}
	if _, err := st.Approve(ctx, "delivery", templates.Review{By: "rev", Version: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.tts(num, "delivery", "Ann", "P1", "2 and 4"); err != nil {
		t.Fatalf("after re-approval: %v", err)
	}
	// Restarting with the same config file keeps the reviewed edit.
	e2 := FromConfig(v.cfg, v.rdb, nil)
	if tm, _ := e2.Templates().Template(ctx, "delivery"); tm.Status != templates.StatusApproved || tm.Version != 2 {
		t.Fatalf("after re-seed: %s v%d", tm.Status, tm.Version)
	}
}

func TestAuditChain(t *testing.T) {
	v := newEnv(t, nil)
	ctx := context.Background()
	_, _ = v.code(num)
	v.clk.Add(time.Second)
	_, _ = v.code(num) // refused
	rep, err := v.e.Audit().Verify(ctx)
	if err != nil || !rep.OK || rep.Entries < 5 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	var buf bytes.Buffer
	n, err := v.e.Audit().Export(ctx, &buf)
	if err != nil || n != rep.Entries || strings.Contains(buf.String(), "8613800138000") {
		t.Fatalf("export: %d %v", n, err)
	}
	for _, typ := range []string{"template.added", "config.loaded", "send.accepted", "send.refused"} {
		if !strings.Contains(buf.String(), `"type":"`+typ+`"`) {
			t.Errorf("export has no %s entry", typ)
		}
	}
	// Tamper: rewrite the refused send as accepted.
	msgs, _ := v.rdb.XRange(ctx, "vms:audit", "-", "+").Result()
	last := msgs[len(msgs)-1]
	body := strings.Replace(last.Values["e"].(string), "send.refused", "send.accepted", 1)
	v.rdb.XDel(ctx, "vms:audit", last.ID)
	v.rdb.XAdd(ctx, &redis.XAddArgs{Stream: "vms:audit", Values: []any{"e", body}})
	rep, err = v.e.Audit().Verify(ctx)
	if err != nil || rep.OK || !strings.Contains(rep.Problem, "altered") {
		t.Fatalf("tampered entry not found: %+v %v", rep, err)
	}
	// Removing the last entry is found too.
	msgs, _ = v.rdb.XRange(ctx, "vms:audit", "-", "+").Result()
	v.rdb.XDel(ctx, "vms:audit", msgs[len(msgs)-1].ID)
	rep, _ = v.e.Audit().Verify(ctx)
	if rep.OK || !strings.Contains(rep.Problem, "removed from the end") {
		t.Fatalf("truncation not found: %+v", rep)
	}
}

func TestLogsNeverHoldTheNumber(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := newEnv(t, nil)
	v.e.log = log
	ctx := context.Background()
	_ = v.e.Suppress(ctx, "default", "+8613800138005", "")
	_, _ = v.code("+8613800138005")
	_, _ = v.code(num)
	_, _ = v.code(num)
	if buf.Len() == 0 || strings.Contains(buf.String(), "8613800138005") || strings.Contains(buf.String(), "13800138000") {
		t.Fatalf("log output holds a full number or nothing:\n%s", buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
func (s *syncBuffer) Len() int       { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Len() }
