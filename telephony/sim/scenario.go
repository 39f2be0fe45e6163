package sim

import (
	"fmt"
	"sort"
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
	KindBlackhole   = "blackhole" // never responds at all
)

// Event kinds a scenario can schedule after the 200 OK (see Scenario.Events).
const (
	EventDTMF     = "dtmf"     // RFC 4733 telephone-events for Keys
	EventInfo     = "info"     // SIP INFO application/dtmf-relay for Keys
	EventReinvite = "reinvite" // in-dialog re-INVITE with the current SDP
	EventUpdate   = "update"   // in-dialog UPDATE with the current SDP
	EventGarbage  = "garbage"  // non-RTP datagrams and RTP of an unexpected payload type
	EventBye      = "bye"      // hang up
)

// Event is something the simulator does At after its 200 OK.
type Event struct {
	Kind string
	At   time.Duration
	Keys string // dtmf, info
}

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
	// Events run after the 200 OK, in order of At.
	Events []Event
	// FailFirst answers the first FailFirst INVITEs for the number with
	// FailCode (e.g. 503) before the scenario proper: "fails, then recovers".
	FailFirst int
	FailCode  int
	// AnswerSDP replaces the SDP of the 200 OK: "bad" (malformed), "g729"
	// (no common codec), "refuse" (m=audio 0), "none" (no body), "nat"
	// (names a port the media does not come from), "elsewhere" (names an IP
	// address the media does not come from: the next one after the
	// simulator's).
	AnswerSDP string
	// Silent sends no RTP to the caller.
	Silent bool
}

// String returns the scenario in the form ParseScenario reads.
func (s Scenario) String() string {
	out := s.Kind
	if s.After > 0 && (s.Kind == KindHangup || s.Kind == KindEarly) {
		out += ":" + s.After.String()
	}
	for _, e := range s.Events {
		out += ";" + e.Kind
		if e.Keys != "" {
			out += "=" + e.Keys
		}
		out += "@" + e.At.String()
	}
	if s.FailFirst > 0 {
		out += fmt.Sprintf(";fail=%dx%d", s.FailCode, s.FailFirst)
	}
	if s.AnswerSDP != "" {
		out += ";sdp=" + s.AnswerSDP
	}
	if s.Silent {
		out += ";silent"
	}
	return out
}

// ParseScenario reads "kind" or "kind:duration", e.g. "answer", "busy",
// "hangup:3s", "early:500ms". Only hangup and early take a duration; when it
// is left out they use DefaultHangupAfter and DefaultEarlyAfter.
//
// Options follow after semicolons:
//
//	dtmf=KEYS@T     send KEYS as RFC 4733 events T after the 200 OK
//	info=KEYS@T     send KEYS as SIP INFO (application/dtmf-relay) at T
//	reinvite@T      send a re-INVITE with the current SDP at T
//	update@T        send an UPDATE with the current SDP at T
//	garbage@T       send non-RTP datagrams and RTP of payload type 99 at T
//	bye@T           hang up at T (as hangup:T)
//	fail=CODExN     answer the first N INVITEs for the number with CODE, then recover
//	sdp=bad|g729|refuse|none   a broken SDP answer in the 200 OK
//	sdp=nat         the SDP names the wrong RTP port (media comes from another)
//	sdp=elsewhere   the SDP's c= names the next IP address (media comes from ours)
//	silent          send no RTP
//
// e.g. "answer;dtmf=1@2s;reinvite@1s" or "unavailable" vs "answer;fail=503x2".
func ParseScenario(s string) (Scenario, error) {
	head, opts, _ := strings.Cut(strings.TrimSpace(s), ";")
	sc, err := parseKind(s, head)
	if err != nil {
		return Scenario{}, err
	}
	if opts == "" {
		return sc, nil
	}
	for _, o := range strings.Split(opts, ";") {
		if err := sc.parseOption(strings.TrimSpace(o)); err != nil {
			return Scenario{}, fmt.Errorf("scenario %q: %w", s, err)
		}
	}
	sortEvents(sc.Events)
	return sc, nil
}

func sortEvents(ev []Event) {
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].At < ev[j].At })
}

func (sc *Scenario) parseOption(o string) error {
	switch {
	case o == "":
		return nil
	case o == "silent":
		sc.Silent = true
		return nil
	case strings.HasPrefix(o, "sdp="):
		v := strings.TrimPrefix(o, "sdp=")
		switch v {
		case "bad", "g729", "refuse", "none", "nat", "elsewhere":
			sc.AnswerSDP = v
			return nil
		}
		return fmt.Errorf("sdp=%s: use bad, g729, refuse, none, nat or elsewhere", v)
	case strings.HasPrefix(o, "fail="):
		var code, n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(o, "fail="), "%dx%d", &code, &n); err != nil || code < 300 || code > 699 || n < 1 {
			return fmt.Errorf("%s: use fail=CODExN, e.g. fail=503x2", o)
		}
		sc.FailCode, sc.FailFirst = code, n
		return nil
	}
	name, at, ok := strings.Cut(o, "@")
	if !ok {
		return fmt.Errorf("option %q: unknown (events need @TIME, e.g. dtmf=1@2s)", o)
	}
	d, err := time.ParseDuration(at)
	if err != nil || d < 0 {
		return fmt.Errorf("option %q: bad time %q", o, at)
	}
	kind, keys, _ := strings.Cut(name, "=")
	switch kind {
	case EventDTMF, EventInfo:
		if keys == "" || strings.Trim(keys, "0123456789*#ABCD") != "" {
			return fmt.Errorf("option %q: keys must be 0-9 * # A-D", o)
		}
	case EventReinvite, EventUpdate, EventGarbage, EventBye:
	default:
		return fmt.Errorf("option %q: unknown event %q", o, kind)
	}
	sc.Events = append(sc.Events, Event{Kind: kind, At: d, Keys: keys})
	return nil
}

func parseKind(s, head string) (Scenario, error) {
	kind, dur, hasDur := strings.Cut(strings.TrimSpace(head), ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	var sc Scenario
	switch kind {
	case KindAnswer, KindBusy, KindRing, KindDecline, KindNotFound, KindUnavailable, KindChallenge, KindBlackhole:
		if hasDur {
			return Scenario{}, fmt.Errorf("scenario %q: %s takes no duration", s, kind)
		}
		return Scenario{Kind: kind}, nil
	case KindHangup:
		sc = Scenario{Kind: kind, After: DefaultHangupAfter}
	case KindEarly:
		sc = Scenario{Kind: kind, After: DefaultEarlyAfter}
	default:
		return Scenario{}, fmt.Errorf("scenario %q: unknown kind %q (want answer, hangup, busy, ring, decline, notfound, unavailable, early, challenge or blackhole)", s, kind)
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
	case KindAnswer, KindBusy, KindRing, KindDecline, KindNotFound, KindUnavailable, KindChallenge, KindBlackhole:
	default:
		sc.Kind = KindAnswer
	}
	return sc
}
