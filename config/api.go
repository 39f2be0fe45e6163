package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/vms-project/vms/internal/netguard"
)

// API configures the upstream HTTP API, apps, status callbacks and billing.
type API struct {
	// Listen is the host:port `vms api` serves on.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files (certificate chain, private key):
	// set both to serve HTTPS (TLS 1.2 or later), neither for plain HTTP.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TimestampSkew is how far a request's timestamp may be from the
	// server's clock; nonces are remembered for twice as long.
	TimestampSkew Duration `yaml:"timestamp_skew"`
	// Apps are the upstream systems allowed to call the API.
	Apps []App `yaml:"apps"`
	// Callbacks configures delivery of status callbacks.
	Callbacks Callbacks `yaml:"callbacks"`
	// Billing configures reports and reconciliation.
	Billing Billing `yaml:"billing"`
}

// App is one upstream system with its own key, rate limit, callback URL and
// templates.
type App struct {
	ID string `yaml:"id"`
	// Key is the HMAC key; prefer KeyEnv or KeyFile so it stays out of the
	// config file. Exactly one of the three is set.
	Key     string `yaml:"key"`
	KeyEnv  string `yaml:"key_env"`
	KeyFile string `yaml:"key_file"`
	// RateLimit is the API requests per second allowed (burst: the same number).
	RateLimit float64 `yaml:"rate_limit"`
	// CallbackURL receives status callbacks of the app's messages that name
	// no callback_url of their own. Empty: no callbacks unless a message names one.
	CallbackURL string `yaml:"callback_url"`
	// CallbackHosts, when not empty, are the only hosts the app's callbacks
	// may go to: host names, or "*.domain" for any name under domain. A
	// send whose callback_url names another host is refused.
	CallbackHosts []string `yaml:"callback_hosts"`
	// CallbackEvents are the events posted: dialing, ringing, answered,
	// final, keypress (the DTMF keys of a call, posted when it ends).
	CallbackEvents []string `yaml:"callback_events"`
	// Templates the app may send; "*" allows every template.
	Templates []string `yaml:"templates"`
}

// Callbacks configures status callback delivery.
type Callbacks struct {
	// RetryFor is how long a callback is retried before it is given up.
	RetryFor Duration `yaml:"retry_for"`
	// InitialBackoff is the wait after the first failure; it doubles after
	// each further failure up to MaxBackoff.
	InitialBackoff Duration `yaml:"initial_backoff"`
	MaxBackoff     Duration `yaml:"max_backoff"`
	// Timeout bounds one POST, response included.
	Timeout Duration `yaml:"timeout"`
	// Concurrency is how many callbacks one `vms api` process posts at once.
	Concurrency int `yaml:"concurrency"`
	// AllowPrivateHosts lets callbacks go to loopback, private, link-local
	// and other non-public addresses. Off (the default), such URLs are
	// refused at enqueue and such addresses at connect time, so an app
	// cannot make vms reach inside the network; turn it on only when the
	// receivers are internal.
	AllowPrivateHosts bool `yaml:"allow_private_hosts"`
}

// Billing configures `vms billing`.
type Billing struct {
	Reconcile Reconcile `yaml:"reconcile"`
}

// Reconcile says how to read a carrier's CDR export and how much
// disagreement is tolerated.
type Reconcile struct {
	// MatchOn is what the carrier's id column holds: call_id (the SIP
	// Call-ID) or message_id.
	MatchOn string `yaml:"match_on"`
	// Columns name the header of each column used.
	Columns ReconcileColumns `yaml:"columns"`
	// TimeFormat of the time columns: rfc3339, unix, unix_ms, or a Go layout.
	TimeFormat string `yaml:"time_format"`
	// DurationTolerance is the largest billed-duration difference of one
	// call that still counts as agreeing.
	DurationTolerance Duration `yaml:"duration_tolerance"`
	// TolerancePermille is the error rate (‰) above which reconcile exits non-zero.
	TolerancePermille float64 `yaml:"tolerance_permille"`
	// IncludeUnanswered: the carrier file lists unanswered calls too, so
	// ours are expected in it.
	IncludeUnanswered bool `yaml:"include_unanswered"`
}

// ReconcileColumns name the carrier CSV columns (header names).
type ReconcileColumns struct {
	ID            string `yaml:"id"`
	Start         string `yaml:"start"`
	Answer        string `yaml:"answer"`
	End           string `yaml:"end"`
	BilledSeconds string `yaml:"billed_seconds"`
}

// Callback events an app may subscribe to. "final" is any terminal state;
// "keypress" lists the DTMF keys the callee pressed (one per call, sent
// when it ends, only if a key was pressed).
var CallbackEvents = []string{"dialing", "ringing", "answered", "final", "keypress"}

var appIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// minKeyLen is the shortest app key accepted (bytes).
const minKeyLen = 16

// App returns the app of that ID.
func (a *API) App(id string) (App, bool) {
	for _, app := range a.Apps {
		if app.ID == id {
			return app, true
		}
	}
	return App{}, false
}

// ResolveKey returns the app's key from key, key_env or key_file (trailing
// newlines of a file are removed). The key itself never appears in errors.
func (a App) ResolveKey() ([]byte, error) {
	var k string
	switch {
	case a.Key != "":
		k = a.Key
	case a.KeyEnv != "":
		v, ok := os.LookupEnv(a.KeyEnv)
		if !ok {
			return nil, fmt.Errorf("app %s: environment variable %s (key_env) is not set", a.ID, a.KeyEnv)
		}
		k = v
	case a.KeyFile != "":
		b, err := os.ReadFile(a.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("app %s: key_file: %w", a.ID, err)
		}
		k = strings.TrimRight(string(b), "\r\n")
	default:
		return nil, fmt.Errorf("app %s: set one of key, key_env, key_file", a.ID)
	}
	if len(k) < minKeyLen {
		return nil, fmt.Errorf("app %s: key is %d bytes: use at least %d random bytes (e.g. `openssl rand -hex 32`)", a.ID, len(k), minKeyLen)
	}
	return []byte(k), nil
}

// Subscribed reports whether the app wants callbacks for event.
func (a App) Subscribed(event string) bool {
	for _, e := range a.CallbackEvents {
		if e == event {
			return true
		}
	}
	return false
}

// MaySend reports whether the app may send template id.
func (a App) MaySend(id string) bool {
	for _, t := range a.Templates {
		if t == "*" || t == id {
			return true
		}
	}
	return false
}

func (c *Config) validateAPI(p *problems) {
	a := &c.API
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		p.add("api.listen %q: use host:port, e.g. 127.0.0.1:8080", a.Listen)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		p.add("api.tls_cert and api.tls_key: set both (PEM certificate chain and private key) to serve HTTPS, or neither for plain HTTP")
	} else if a.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey); err != nil {
			p.add("api.tls_cert %s / api.tls_key %s: %v (give readable PEM files of a certificate and its private key)", a.TLSCert, a.TLSKey, err)
		}
	}
	if a.MaxBodyBytes < 1024 || a.MaxBodyBytes > 16<<20 {
		p.add("api.max_body_bytes %d: between 1024 and 16777216", a.MaxBodyBytes)
	}
	if d := a.TimestampSkew.D(); d < 5*time.Second || d > time.Hour {
		p.add("api.timestamp_skew %s: between 5s and 1h", d)
	}
	seen := map[string]bool{}
	for i, app := range a.Apps {
		at := fmt.Sprintf("api.apps[%d]", i)
		if !appIDRE.MatchString(app.ID) {
			p.add("%s.id %q: use 1-64 characters from A-Z a-z 0-9 . _ - starting with a letter or digit", at, app.ID)
		} else if seen[app.ID] {
			p.add("%s.id %q is used twice", at, app.ID)
		} else if app.ID == "default" {
			// The app of messages sent from the CLI and by Go code that
			// names none: an API app with that name would own them all.
			p.add("%s.id %q is reserved for messages sent without an app (the CLI): choose another id", at, app.ID)
		}
		seen[app.ID] = true
		n := 0
		for _, s := range []string{app.Key, app.KeyEnv, app.KeyFile} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			p.add("%s: set exactly one of key, key_env, key_file (prefer key_env or key_file)", at)
		}
		if app.Key != "" && len(app.Key) < minKeyLen {
			p.add("%s.key: at least %d bytes (e.g. `openssl rand -hex 32`)", at, minKeyLen)
		}
		if app.RateLimit <= 0 || app.RateLimit > 100000 {
			p.add("%s.rate_limit %g: requests per second, above 0 and at most 100000", at, app.RateLimit)
		}
		for _, h := range app.CallbackHosts {
			if err := netguard.CheckHostPattern(h); err != nil {
				p.add("%s.callback_hosts: %v", at, err)
			}
		}
		if app.CallbackURL != "" {
			if err := netguard.CheckURL(app.CallbackURL, a.Callbacks.AllowPrivateHosts, app.CallbackHosts); err != nil {
				hint := ""
				if errors.Is(err, netguard.ErrAddressNotAllowed) {
					hint = "; if the receiver is internal on purpose, set api.callbacks.allow_private_hosts: true"
				}
				p.add("%s.callback_url %q: %v%s", at, redactedURL(app.CallbackURL), err, hint)
			}
		}
		for _, e := range app.CallbackEvents {
			ok := false
			for _, k := range CallbackEvents {
				ok = ok || e == k
			}
			if !ok {
				p.add("%s.callback_events: %q is not one of %s", at, e, strings.Join(CallbackEvents, ", "))
			}
		}
		for _, t := range app.Templates {
			if t == "*" {
				continue
			}
			if _, ok := c.templateByID(t); !ok {
				p.add("%s.templates: template %q is not in templates", at, t)
			}
		}
	}
	cb := a.Callbacks
	if cb.RetryFor.D() < time.Second {
		p.add("api.callbacks.retry_for %s: at least 1s", cb.RetryFor.D())
	}
	if cb.InitialBackoff.D() < 10*time.Millisecond || cb.MaxBackoff.D() < cb.InitialBackoff.D() {
		p.add("api.callbacks.initial_backoff %s / max_backoff %s: initial at least 10ms, max at least initial", cb.InitialBackoff.D(), cb.MaxBackoff.D())
	}
	if cb.Timeout.D() < 100*time.Millisecond || cb.Timeout.D() > 5*time.Minute {
		p.add("api.callbacks.timeout %s: between 100ms and 5m", cb.Timeout.D())
	}
	if cb.Concurrency < 1 {
		p.add("api.callbacks.concurrency %d: at least 1", cb.Concurrency)
	}
	r := a.Billing.Reconcile
	if r.MatchOn != "call_id" && r.MatchOn != "message_id" {
		p.add("api.billing.reconcile.match_on %q: use call_id or message_id", r.MatchOn)
	}
	if r.Columns.ID == "" || r.Columns.BilledSeconds == "" {
		p.add("api.billing.reconcile.columns: id and billed_seconds must name CSV columns")
	}
	if r.TimeFormat == "" {
		p.add("api.billing.reconcile.time_format is empty: use rfc3339, unix, unix_ms or a Go layout")
	}
	if r.DurationTolerance.D() < 0 {
		p.add("api.billing.reconcile.duration_tolerance %s: must not be negative", r.DurationTolerance.D())
	}
	if r.TolerancePermille < 0 || r.TolerancePermille > 1000 {
		p.add("api.billing.reconcile.tolerance_permille %g: between 0 and 1000", r.TolerancePermille)
	}
}

func (c *Config) templateByID(id string) (Template, bool) {
	for _, t := range c.Templates {
		if t.ID == id {
			return t, true
		}
	}
	return Template{}, false
}

// redactedURL is u without userinfo and query, for messages.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
