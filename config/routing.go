package config

import (
	"slices"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// Routing configures how calls are routed across trunks, the limits shared
// by every worker, trunk health and redials.
type Routing struct {
	// FailureThreshold is how many carrier-side failures in a row mark a
	// trunk down.
	FailureThreshold int `yaml:"failure_threshold"`
	// Cooloff is how long a down trunk takes no calls before it is probed.
	Cooloff Duration `yaml:"cooloff"`
	// ProbeInterval is how often workers look for trunks to probe with
	// OPTIONS (once their cool-off is over).
	ProbeInterval Duration `yaml:"probe_interval"`
	// ChannelLease is the lease of a channel slot; a call renews it while it
	// is up, and a crashed worker's slot comes back within it.
	ChannelLease Duration `yaml:"channel_lease"`
	// LimitWait is how long a call waits for a channel slot or a
	// calls-per-second token before its task is rescheduled (not counted as
	// a failed try).
	LimitWait Duration `yaml:"limit_wait"`
	// Redial is the redial policy per message kind: code, tts.
	Redial map[string]Redial `yaml:"redial"`
}

// Redial says when a message whose call did not reach the callee is dialled
// again, as a new attempt with its own outcome.
type Redial struct {
	// On lists the statuses that may be redialled: busy, no_answer, unreachable.
	On []string `yaml:"on"`
	// Max is the number of redials after the first attempt (0: never).
	Max int `yaml:"max"`
	// Delay is the wait before each redial.
	Delay Duration `yaml:"delay"`
}

// RedialStatuses are the statuses a redial policy may name. Declined,
// invalid, failed and answered calls are never redialled.
var RedialStatuses = []string{"busy", "no_answer", "unreachable"}

// CallerIDModes are the accepted trunks[].caller_id_mode values.
var CallerIDModes = []string{"fixed", "round_robin", "country"}

// PolicyFor returns the redial policy of a message kind (zero: no redials).
func (r Routing) PolicyFor(kind string) Redial { return r.Redial[kind] }

func (c *Config) validateRouting(p *problems) {
	r := c.Routing
	if r.FailureThreshold < 1 {
		p.add("routing.failure_threshold %d: at least 1 (failures in a row before a trunk is marked down)", r.FailureThreshold)
	}
	if r.Cooloff.D() < time.Second {
		p.add("routing.cooloff %s: at least 1s", r.Cooloff.D())
	}
	if r.ProbeInterval.D() < 100*time.Millisecond {
		p.add("routing.probe_interval %s: at least 100ms", r.ProbeInterval.D())
	}
	if r.ChannelLease.D() < time.Second {
		p.add("routing.channel_lease %s: at least 1s (slots are renewed at a third of it)", r.ChannelLease.D())
	}
	if r.LimitWait.D() < 0 || r.LimitWait.D() > 5*time.Minute {
		p.add("routing.limit_wait %s: between 0 and 5m", r.LimitWait.D())
	}
	for kind, rd := range r.Redial {
		at := "routing.redial." + kind
		if kind != "code" && kind != "tts" {
			p.add("%s: unknown message kind %q (use code or tts)", at, kind)
		}
		if rd.Max < 0 || rd.Max > 10 {
			p.add("%s.max %d: between 0 and 10", at, rd.Max)
		}
		if rd.Max > 0 && rd.Delay.D() < time.Second {
			p.add("%s.delay %s: at least 1s between attempts", at, rd.Delay.D())
		}
		if rd.Max > 0 && len(rd.On) == 0 {
			p.add("%s.on is empty: list the statuses to redial (%s)", at, strings.Join(RedialStatuses, ", "))
		}
		for _, s := range rd.On {
			if !slices.Contains(RedialStatuses, s) {
				p.add("%s.on: %q cannot be redialled (only %s; declined, invalid and answered calls never are)",
					at, s, strings.Join(RedialStatuses, ", "))
			}
		}
	}
}

// validateTrunkRouting checks one trunk's routing keys; validateTrunks calls it.
func validateTrunkRouting(p *problems, at string, t Trunk) {
	for i, id := range t.CallerIDs {
		if !isE164(id) {
			p.add("%s.caller_ids[%d] %q: use an E.164 number such as +8610xxxxxxxx", at, i, id)
		}
	}
	if t.CallerIDMode != "" && !slices.Contains(CallerIDModes, t.CallerIDMode) {
		p.add("%s.caller_id_mode %q: use %s", at, t.CallerIDMode, strings.Join(CallerIDModes, ", "))
	}
	if (t.CallerIDMode == "round_robin" || t.CallerIDMode == "country") && len(t.CallerIDs) == 0 {
		p.add("%s.caller_id_mode %s needs a pool: list caller_ids", at, t.CallerIDMode)
	}
	seen := map[string]bool{}
	for i, pre := range t.Prefixes {
		if len(pre) < 2 || pre[0] != '+' || strings.Trim(pre[1:], "0123456789") != "" || len(pre) > 16 {
			p.add("%s.prefixes[%d] %q: an E.164 prefix is + and 1-15 digits, e.g. +86 or +1415", at, i, pre)
		} else if seen[pre] {
			p.add("%s.prefixes[%d] %q is listed twice", at, i, pre)
		}
		seen[pre] = true
	}
	if t.MaxChannels < 0 {
		p.add("%s.max_channels %d: 0 (no cap) or more", at, t.MaxChannels)
	}
	if t.CPS < 0 || t.CPS > 10000 {
		p.add("%s.cps %g: 0 (no cap) up to 10000 calls per second", at, t.CPS)
	}
	if t.AuthUsername != "" && t.Password == "" {
		p.add("%s.auth_username is set but the trunk has no password (password or password_env)", at)
	}
	if strings.ContainsAny(t.FromDomain, " :;@<>") {
		p.add("%s.from_domain %q: a host name or IP address, without port or user", at, t.FromDomain)
	}
}

func isE164(s string) bool {
	if !strings.HasPrefix(s, "+") {
		return false
	}
	_, err := phonenumbers.Parse(s, "")
	return err == nil
}
