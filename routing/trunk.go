package routing

import (
	"slices"
	"sync/atomic"

	"github.com/nyaruka/phonenumbers"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/telephony"
)

// Trunk is a carrier trunk with what routing needs to know about it.
type Trunk struct {
	// Trunk is what the dialer needs; its CallerID is replaced per call.
	telephony.Trunk
	// Prefixes are the E.164 prefixes served; empty serves every number.
	Prefixes []string
	// Priority orders trunks of equal prefix match: lower first.
	Priority int
	// MaxChannels and CPS are the shared limits (0: none).
	MaxChannels int
	CPS         float64
	// CallerIDs is the caller ID pool and CallerIDMode how one is picked.
	CallerIDs    []string
	CallerIDMode string

	order int // position in the config: the last tie-breaker
	rr    atomic.Uint64
}

// NewTrunk combines a configured trunk with its dialer form.
func NewTrunk(c config.Trunk, base telephony.Trunk) *Trunk {
	t := &Trunk{Trunk: base, Prefixes: c.Prefixes, Priority: c.Priority, MaxChannels: c.MaxChannels,
		CPS: c.CPS, CallerIDs: c.CallerIDs, CallerIDMode: c.CallerIDMode}
	if len(t.CallerIDs) == 0 && c.CallerID != "" {
		t.CallerIDs = []string{c.CallerID}
	}
	if t.CallerIDMode == "" {
		t.CallerIDMode = "fixed"
	}
	return t
}

// match returns the length of the longest prefix of t that number starts
// with: 0 for a trunk that serves every number, -1 when t does not serve it.
func (t *Trunk) match(number string) int {
	if len(t.Prefixes) == 0 {
		return 0
	}
	best := -1
	for _, p := range t.Prefixes {
		if len(p) > best && len(number) >= len(p) && number[:len(p)] == p {
			best = len(p)
		}
	}
	return best
}

// CallerIDFor picks the caller ID for a call to number: the first of the
// pool (fixed), the next in turn (round_robin), or one with the callee's
// country calling code (country; round robin among several, the first of
// the pool when none matches). Empty when the trunk has no caller ID.
func (t *Trunk) CallerIDFor(number string) string {
	pool := t.CallerIDs
	if len(pool) == 0 {
		return ""
	}
	switch t.CallerIDMode {
	case "round_robin":
		return pool[(t.rr.Add(1)-1)%uint64(len(pool))]
	case "country":
		want := countryCode(number)
		var same []string
		for _, id := range pool {
			if want != 0 && countryCode(id) == want {
				same = append(same, id)
			}
		}
		if len(same) == 0 {
			return pool[0]
		}
		return same[(t.rr.Add(1)-1)%uint64(len(same))]
	}
	return pool[0]
}

// ForCall returns the dialer's trunk for a call to number, with its caller ID.
func (t *Trunk) ForCall(number string) telephony.Trunk {
	tr := t.Trunk
	tr.CallerID = t.CallerIDFor(number)
	tr.Codecs = slices.Clone(t.Codecs)
	return tr
}

func countryCode(number string) int32 {
	n, err := phonenumbers.Parse(number, "")
	if err != nil {
		return 0
	}
	return n.GetCountryCode()
}
