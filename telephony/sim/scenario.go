package sim

import (
	"fmt"
	"strings"
	"time"
)

// Scenario kinds understood by the simulator.
const (
	KindAnswer      = "answer"
	KindHangup      = "hangup"
	KindBusy        = "busy"
	KindRing        = "ring"
	KindDecline     = "decline"
	KindNotFound    = "notfound"
	KindUnavailable = "unavailable"
	KindEarly       = "early"
	KindChallenge   = "challenge"
)

// Default durations of the scenarios that take one.
const (
	DefaultHangupAfter = 3 * time.Second
	DefaultEarlyAfter  = time.Second
)

// Scenario says how the simulator treats a call. After is the hang-up delay
// for "hangup" (from the 200 OK) and the early-media time before the 200 OK
// for "early"; other kinds ignore it.
type Scenario struct {
	Kind  string
	After time.Duration
}

// String returns the scenario in the form ParseScenario reads.
func (s Scenario) String() string {
	if s.After > 0 && (s.Kind == KindHangup || s.Kind == KindEarly) {
		return s.Kind + ":" + s.After.String()
	}
	return s.Kind
}

// ParseScenario reads "kind" or "kind:duration", e.g. "answer", "busy",
// "hangup:3s", "early:500ms". Only hangup and early take a duration; when it
// is left out they use DefaultHangupAfter and DefaultEarlyAfter.
func ParseScenario(s string) (Scenario, error) {
	kind, dur, hasDur := strings.Cut(strings.TrimSpace(s), ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	var sc Scenario
	switch kind {
	case KindAnswer, KindBusy, KindRing, KindDecline, KindNotFound, KindUnavailable, KindChallenge:
		if hasDur {
			return Scenario{}, fmt.Errorf("scenario %q: %s takes no duration", s, kind)
		}
		return Scenario{Kind: kind}, nil
	case KindHangup:
		sc = Scenario{Kind: kind, After: DefaultHangupAfter}
	case KindEarly:
		sc = Scenario{Kind: kind, After: DefaultEarlyAfter}
	default:
		return Scenario{}, fmt.Errorf("scenario %q: unknown kind %q (want answer, hangup, busy, ring, decline, notfound, unavailable, early or challenge)", s, kind)
	}
	if hasDur {
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		if err != nil {
			return Scenario{}, fmt.Errorf("scenario %q: bad duration: %w", s, err)
		}
		if d < 0 {
			return Scenario{}, fmt.Errorf("scenario %q: negative duration", s)
		}
		sc.After = d
	}
	return sc, nil
}

// scenarioFor picks the scenario of a called number: an exact match in
// table first, else the last two digits (see the package documentation).
func scenarioFor(number string, table map[string]Scenario) Scenario {
	if sc, ok := table[number]; ok {
		return normalize(sc)
	}
	if len(number) < 2 {
		return Scenario{Kind: KindAnswer}
	}
	a, b := number[len(number)-2], number[len(number)-1]
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return Scenario{Kind: KindAnswer}
	}
	switch {
	case a == '0' && b == '1':
		return Scenario{Kind: KindBusy}
	case a == '0' && b == '2':
		return Scenario{Kind: KindRing}
	case a == '0' && b == '3':
		return Scenario{Kind: KindDecline}
	case a == '0' && b == '4':
		return Scenario{Kind: KindNotFound}
	case a == '0' && b == '5':
		return Scenario{Kind: KindUnavailable}
	case a == '0' && b == '6':
		return Scenario{Kind: KindEarly, After: DefaultEarlyAfter}
	case a == '0' && b == '7':
		return Scenario{Kind: KindChallenge}
	case a == '1' && b != '0':
		return Scenario{Kind: KindHangup, After: time.Duration(b-'0') * time.Second}
	}
	return Scenario{Kind: KindAnswer}
}

// normalize fills the defaults of a scenario given in Config.Scenarios.
func normalize(sc Scenario) Scenario {
	sc.Kind = strings.ToLower(sc.Kind)
	switch sc.Kind {
	case KindHangup:
		if sc.After <= 0 {
			sc.After = DefaultHangupAfter
		}
	case KindEarly:
		if sc.After <= 0 {
			sc.After = DefaultEarlyAfter
		}
	case KindAnswer, KindBusy, KindRing, KindDecline, KindNotFound, KindUnavailable, KindChallenge:
	default:
		sc.Kind = KindAnswer
	}
	return sc
}
