package policy

import (
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Window is a daily quiet period in the callee's local time, in minutes
// after midnight; Start > End crosses midnight. Start == End: none.
type Window struct {
	Start, End int
}

// On reports whether the window is set.
func (w Window) On() bool { return w.Start != w.End }

// Quiet reports whether the local time t falls in the window.
func (w Window) Quiet(t time.Time) bool {
	if !w.On() {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End
}

// NextAllowed returns the first moment at or after t (in t's location) that
// is outside the window: t itself when t is not quiet, otherwise the next
// end of the window, which may be the next day.
func (w Window) NextAllowed(t time.Time) time.Time {
	if !w.Quiet(t) {
		return t
	}
	y, mo, d := t.Date()
	end := time.Date(y, mo, d, w.End/60, w.End%60, 0, 0, t.Location())
	if !end.After(t) {
		end = time.Date(y, mo, d+1, w.End/60, w.End%60, 0, 0, t.Location())
	}
	return end
}

// Zones returns the time zones of a number (E.164) from libphonenumber's
// data, or fallback when the data does not know them.
func Zones(number string, fallback *time.Location) []*time.Location {
	n, err := phonenumbers.Parse(number, "")
	if err != nil {
		return []*time.Location{fallback}
	}
	names, err := phonenumbers.GetTimezonesForNumber(n)
	if err != nil {
		return []*time.Location{fallback}
	}
	var out []*time.Location
	for _, name := range names {
		if name == "" || name == "Etc/Unknown" {
			continue
		}
		if loc, err := time.LoadLocation(name); err == nil {
			out = append(out, loc)
		}
	}
	if len(out) == 0 {
		return []*time.Location{fallback}
	}
	return out
}

// quietCheck says whether now is quiet for a number in any of its zones,
// and the earliest moment outside the window in all of them, with the zone
// that decided it.
func quietCheck(w Window, zones []*time.Location, now time.Time) (quiet bool, next time.Time, zone *time.Location) {
	next, zone = now, zones[0]
	for _, z := range zones {
		if w.Quiet(now.In(z)) {
			quiet = true
			zone = z
			break
		}
	}
	if !quiet {
		return false, now, zone
	}
	// Move forward until no zone is quiet (a number may span zones).
	for i := 0; i < 2*len(zones)+1; i++ {
		moved := false
		for _, z := range zones {
			if n := w.NextAllowed(next.In(z)); n.After(next) {
				next, zone, moved = n, z, true
			}
		}
		if !moved {
			break
		}
	}
	return true, next, zone
}
