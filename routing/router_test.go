package routing

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/telephony"
)

func trunk(name string, prio int, prefixes ...string) *Trunk {
	return NewTrunk(config.Trunk{Name: name, Priority: prio, Prefixes: prefixes}, telephony.Trunk{Name: name})
}

func names(ts []*Trunk) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func TestRouteByPrefixPriorityAndHealth(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	r := New(rdb, []*Trunk{
		trunk("any-cheap", 5),
		trunk("cn", 10, "+86"),
		trunk("cn-mobile", 20, "+86138", "+86139"),
		trunk("any-backup", 9),
		trunk("us", 1, "+1"),
	}, nil, Options{FailureThreshold: 2, Cooloff: time.Minute, ProbeInterval: time.Second, ChannelLease: time.Second})

	cases := []struct {
		to   string
		want []string
	}{
		// Longest prefix first, then priority, then config order.
		{"+8613800138000", []string{"cn-mobile", "cn", "any-cheap", "any-backup"}},
		{"+861012345678", []string{"cn", "any-cheap", "any-backup"}},
		{"+14155550100", []string{"us", "any-cheap", "any-backup"}},
		{"+442071234567", []string{"any-cheap", "any-backup"}},
	}
	for _, c := range cases {
		got, err := r.Route(ctx, c.to)
		if err != nil || !equal(names(got), c.want) {
			t.Errorf("Route(%s) = %v (%v), want %v", c.to, names(got), err, c.want)
		}
	}

	// Two carrier-side failures in a row mark cn-mobile down; a success in between resets the run.
	busy := telephony.Result{Status: queue.StatusBusy, SIPCode: 486, RingingAt: time.Now()}
	fail := telephony.Result{Status: queue.StatusUnreachable, SIPCode: 503}
	cm := r.trunks[2]
	r.Report(ctx, cm, fail)
	r.Report(ctx, cm, busy)
	r.Report(ctx, cm, fail)
	if got, _ := r.Route(ctx, "+8613800138000"); got[0].Name != "cn-mobile" {
		t.Fatalf("cn-mobile down after failures that were not in a row: %v", names(got))
	}
	r.Report(ctx, cm, fail)
	if got, _ := r.Route(ctx, "+8613800138000"); !equal(names(got), []string{"cn", "any-cheap", "any-backup"}) {
		t.Fatalf("after 2 failures in a row: %v, want cn-mobile skipped", names(got))
	}

	only := New(rdb, []*Trunk{trunk("cn-mobile", 0, "+86138")}, nil, Options{FailureThreshold: 2, Cooloff: time.Minute})
	if _, err := only.Route(ctx, "+8613800138000"); !errors.Is(err, ErrAllDown) {
		t.Errorf("only trunk down: %v, want ErrAllDown", err)
	}
	if _, err := only.Route(ctx, "+14155550100"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("unserved number: %v, want ErrNoRoute", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCallerIDModes(t *testing.T) {
	pool := []string{"+8610123456781", "+14155550100", "+8610123456782"}
	mk := func(mode string) *Trunk {
		return NewTrunk(config.Trunk{Name: "t", CallerIDs: pool, CallerIDMode: mode}, telephony.Trunk{Name: "t"})
	}
	fixed := mk("")
	for range 3 {
		if got := fixed.CallerIDFor("+14155550199"); got != pool[0] {
			t.Fatalf("fixed: %s, want %s", got, pool[0])
		}
	}
	rr := mk("round_robin")
	var got []string
	for range 4 {
		got = append(got, rr.CallerIDFor("+8613800138000"))
	}
	if !equal(got, []string{pool[0], pool[1], pool[2], pool[0]}) {
		t.Errorf("round_robin: %v", got)
	}
	country := mk("country")
	if id := country.CallerIDFor("+14155550199"); id != "+14155550100" {
		t.Errorf("country for +1: %s, want the +1 caller ID", id)
	}
	a, b := country.CallerIDFor("+8613800138000"), country.CallerIDFor("+8613800138000")
	if a == b || a[:3] != "+86" || b[:3] != "+86" {
		t.Errorf("country for +86: %s then %s, want the two +86 IDs in turn", a, b)
	}
	if id := country.CallerIDFor("+442071234567"); id != pool[0] {
		t.Errorf("country without a match: %s, want the first of the pool", id)
	}
	single := NewTrunk(config.Trunk{Name: "s", CallerID: "+15550000000"}, telephony.Trunk{Name: "s"})
	if tr := single.ForCall("+8613800138000"); tr.CallerID != "+15550000000" {
		t.Errorf("caller_id alone: %q", tr.CallerID)
	}
}

func TestRedialPolicy(t *testing.T) {
	p := RedialPolicy{
		queue.KindTTS:  {On: []string{"busy", "no_answer"}, Max: 2, Delay: config.Duration(time.Minute)},
		queue.KindCode: {Max: 0},
	}
	now := time.Now()
	busy := telephony.Result{Status: queue.StatusBusy, SIPCode: 486}
	if n := p.Next(queue.KindTTS, 1, busy, now); n == nil || n.Attempt != 2 || n.At.Before(now.Add(time.Minute)) || n.At.After(now.Add(time.Minute+time.Second)) {
		t.Fatalf("tts busy attempt 1: %+v, want attempt 2 in 1m", n)
	}
	if n := p.Next(queue.KindTTS, 3, busy, now); n != nil {
		t.Errorf("tts busy attempt 3 of 1+2: %+v, want none", n)
	}
	if n := p.Next(queue.KindCode, 1, busy, now); n != nil {
		t.Errorf("code busy: %+v, want none (codes are not redialled by default)", n)
	}
	for _, res := range []telephony.Result{
		{Status: queue.StatusRejected, SIPCode: 603},
		{Status: queue.StatusInvalidNumber, SIPCode: 404},
		{Status: queue.StatusCompleted, SIPCode: 200},
		{Status: queue.StatusUnreachable, SIPCode: 503}, // not named by this policy
	} {
		if n := p.Next(queue.KindTTS, 1, res, now); n != nil {
			t.Errorf("tts %s %d: %+v, want no redial", res.Status, res.SIPCode, n)
		}
	}
}
