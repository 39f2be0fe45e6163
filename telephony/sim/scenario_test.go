package sim

import (
	"reflect"
	"testing"
	"time"
)

func TestSimParseScenario(t *testing.T) {
	good := []struct {
		in   string
		want Scenario
	}{
		{"answer", Scenario{Kind: KindAnswer}},
		{" Busy ", Scenario{Kind: KindBusy}},
		{"ring", Scenario{Kind: KindRing}},
		{"decline", Scenario{Kind: KindDecline}},
		{"notfound", Scenario{Kind: KindNotFound}},
		{"unavailable", Scenario{Kind: KindUnavailable}},
		{"challenge", Scenario{Kind: KindChallenge}},
		{"hangup", Scenario{Kind: KindHangup, After: DefaultHangupAfter}},
		{"hangup:3s", Scenario{Kind: KindHangup, After: 3 * time.Second}},
		{"early", Scenario{Kind: KindEarly, After: time.Second}},
		{"early:500ms", Scenario{Kind: KindEarly, After: 500 * time.Millisecond}},
	}
	for _, c := range good {
		got, err := ParseScenario(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseScenario(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if again, err := ParseScenario(got.String()); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("String round trip of %+v: %+v, %v", got, again, err)
		}
	}
	for _, in := range []string{"", "hold", "busy:1s", "hangup:soon", "hangup:-1s", "early:", "answer:2s"} {
		if sc, err := ParseScenario(in); err == nil {
			t.Errorf("ParseScenario(%q) = %+v, want error", in, sc)
		}
	}
}

func TestSimScenarioTable(t *testing.T) {
	table := map[string]Scenario{"+8613800000001": {Kind: KindAnswer}, "vip": {Kind: KindHangup}}
	cases := map[string]Scenario{
		"+8613800000000": {Kind: KindAnswer},
		"+8613800000001": {Kind: KindAnswer}, // exact match wins over the digits
		"+8613800000101": {Kind: KindBusy},
		"02":             {Kind: KindRing},
		"5550103":        {Kind: KindDecline},
		"5550104":        {Kind: KindNotFound},
		"5550105":        {Kind: KindUnavailable},
		"5550106":        {Kind: KindEarly, After: time.Second},
		"5550107":        {Kind: KindChallenge},
		"5550108":        {Kind: KindAnswer},
		"5550110":        {Kind: KindAnswer},
		"5550111":        {Kind: KindHangup, After: time.Second},
		"5550119":        {Kind: KindHangup, After: 9 * time.Second},
		"5550120":        {Kind: KindAnswer},
		"vip":            {Kind: KindHangup, After: DefaultHangupAfter},
		"alice":          {Kind: KindAnswer},
		"1":              {Kind: KindAnswer},
		"":               {Kind: KindAnswer},
	}
	for number, want := range cases {
		if got := scenarioFor(number, table); !reflect.DeepEqual(got, want) {
			t.Errorf("scenarioFor(%q) = %+v, want %+v", number, got, want)
		}
	}
}

func TestSimValidateConfig(t *testing.T) {
	cfg := Config{Scenarios: map[string]Scenario{"a": {Kind: "hold"}, "b": {Kind: "bogus"}, "c": {Kind: "EARLY"}}}
	err := validate(&cfg)
	if err == nil {
		t.Fatal("validate accepted unknown kinds")
	}
	for _, want := range []string{`scenarios["a"]`, `scenarios["b"]`} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not report %s", err, want)
		}
	}
	if !reflect.DeepEqual(cfg.Scenarios["c"], Scenario{Kind: KindEarly, After: DefaultEarlyAfter}) {
		t.Errorf("normalized c = %+v", cfg.Scenarios["c"])
	}
	if cfg.Listen != "127.0.0.1:0" || cfg.Username != "vms" || cfg.Password != "secret" || cfg.Realm != "carrier-sim" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
