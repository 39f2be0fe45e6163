package config

import (
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/vms-project/vms/templates"
)

// Policy configures consent, suppression, frequency limits, quiet hours,
// template review rules, number hashing and the audit log.
type Policy struct {
	// HMACSecret keys the hash of phone numbers in Redis keys (rate limits,
	// consent, suppression) and, through keys derived from it, the audit
	// log's hash chain and its signed head. Prefer HMACSecretEnv, which
	// names an environment variable holding it.
	HMACSecret    string `yaml:"hmac_secret"`
	HMACSecretEnv string `yaml:"hmac_secret_env"`
	// AllowGeneratedKey lets vms run without a secret on a random key it
	// generates into Redis. Off by default, and then a config without a
	// secret is refused at start-up: that key lives next to the data it
	// protects (whoever reads Redis can test numbers and re-sign the audit
	// log) and losing it forgets every suppression and consent.
	AllowGeneratedKey bool `yaml:"allow_generated_key"`
	// Apps gives each upstream app its consent mode; an app not listed uses
	// the entry of the app "default".
	Apps map[string]PolicyApp `yaml:"apps"`
	// Frequency limits calls per number and app, per kind, in sliding windows.
	Frequency FrequencyLimits `yaml:"frequency"`
	// QuietHours per kind, in the callee's local time.
	QuietHours QuietHoursByKind `yaml:"quiet_hours"`
	// FallbackTimezone is used when the number's time zone is unknown.
	FallbackTimezone string `yaml:"fallback_timezone"`
	// BannedWords adjusts the built-in banned word list.
	BannedWords BannedWords `yaml:"banned_words"`
	// VerificationWords per language: a code template must contain one.
	// Languages listed here replace the built-in list of that language.
	VerificationWords map[string][]string `yaml:"verification_words"`
	// TemplateMaxChars is the longest template text.
	TemplateMaxChars int `yaml:"template_max_chars"`
}

// PolicyApp is one app's policy.
type PolicyApp struct {
	// Consent is opt_in (the number must be on the app's consent list) or
	// trusted (the app vouches for consent; not checked).
	Consent string `yaml:"consent"`
}

// Consent modes.
const (
	ConsentOptIn   = "opt_in"
	ConsentTrusted = "trusted"
)

// FrequencyLimit allows at most Max calls to one number within Window.
type FrequencyLimit struct {
	Max    int      `yaml:"max"`
	Window Duration `yaml:"window"`
}

// FrequencyLimits are the limits per kind.
type FrequencyLimits struct {
	Code   []FrequencyLimit `yaml:"code"`
	Notify []FrequencyLimit `yaml:"notify"`
}

// QuietWindow is a daily window "HH:MM"-"HH:MM" in the callee's local time;
// it may cross midnight. Empty start and end: no quiet hours.
type QuietWindow struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// QuietHoursByKind: code calls are refused in quiet hours; notifications
// are deferred to the end of the window unless their template is urgent.
type QuietHoursByKind struct {
	Code   QuietWindow `yaml:"code"`
	Notify QuietWindow `yaml:"notify"`
}

// BannedWords adjusts the banned word list.
type BannedWords struct {
	// Defaults includes the built-in list (gambling, loans, fraud-style
	// wording, hard-sell marketing; Chinese and English).
	Defaults bool     `yaml:"defaults"`
	Add      []string `yaml:"add"`
	Remove   []string `yaml:"remove"`
}

// DisableLimits switches frequency limits and quiet hours off. It is for
// tests and the demo, which call the same simulator numbers at any hour;
// never for a deployment.
func (p *Policy) DisableLimits() {
	p.Frequency = FrequencyLimits{}
	p.QuietHours = QuietHoursByKind{}
}

// ParseClock parses "HH:MM" into minutes after midnight.
func ParseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day: use HH:MM, e.g. 22:00", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// ReviewRules returns the template review rules the config describes.
func (p *Policy) ReviewRules() templates.Rules {
	var words []string
	if p.BannedWords.Defaults {
		words = append(words, templates.DefaultBannedWords...)
	}
	words = append(words, p.BannedWords.Add...)
	remove := map[string]bool{}
	for _, w := range p.BannedWords.Remove {
		remove[w] = true
	}
	kept := words[:0]
	for _, w := range words {
		if !remove[w] {
			kept = append(kept, w)
		}
	}
	vw := map[string][]string{}
	for l, ws := range templates.DefaultVerificationWords {
		vw[l] = ws
	}
	for l, ws := range p.VerificationWords {
		vw[l] = ws
	}
	return templates.Rules{Banned: templates.NewWordList(kept), VerificationWords: vw, MaxTextChars: p.TemplateMaxChars}
}

// TemplateDefs returns the config file's templates, to be seeded into Redis.
func (c *Config) TemplateDefs() []templates.Template {
	out := make([]templates.Template, 0, len(c.Templates))
	for _, t := range c.Templates {
		def := templates.Template{ID: t.ID, Name: t.Name, Kind: templates.Kind(t.Kind), Text: t.Text,
			Language: t.Language, Voice: c.VoiceFor(t.Language, t.Voice), Params: t.Params,
			Urgent: t.Urgent, Status: templates.Status(t.Status)}
		c.templateAudio(t, &def) // audio.go
		if def.Kind == "" {
			def.Kind = templates.KindNotify
		}
		if len(t.KeyActions) > 0 {
			def.KeyActions = map[string]templates.KeyAction{}
			for k, a := range t.KeyActions {
				def.KeyActions[k] = templates.KeyAction(a)
			}
		}
		out = append(out, def)
	}
	return out
}

// NoSecretProblem is the start-up error of a configuration without an HMAC
// secret that does not allow a generated key.
const NoSecretProblem = "policy.hmac_secret_env: no HMAC secret is configured: name an environment variable holding at least 16 random bytes " +
	"(e.g. `export VMS_HMAC_SECRET=$(openssl rand -hex 32)` and policy.hmac_secret_env: VMS_HMAC_SECRET; " +
	"every process of a deployment needs the same one), or set policy.allow_generated_key: true to use a key generated into Redis " +
	"(losing that key forgets every suppression and consent)"

// applyPolicyEnv reads policy.hmac_secret_env.
func (c *Config) applyPolicyEnv() {
	if env := c.Policy.HMACSecretEnv; env != "" {
		if v, ok := os.LookupEnv(env); ok {
			c.Policy.HMACSecret = v
		}
	}
}

func (c *Config) validatePolicy(p *problems) {
	pol := &c.Policy
	if pol.HMACSecretEnv != "" && pol.HMACSecret == "" {
		p.add("policy.hmac_secret_env: environment variable %s is not set or empty (put at least 16 random bytes in it, e.g. `openssl rand -hex 32`)", pol.HMACSecretEnv)
	} else if pol.HMACSecret == "" && !pol.AllowGeneratedKey {
		p.add("%s", NoSecretProblem)
	} else if pol.HMACSecret != "" && len(pol.HMACSecret) < 16 {
		p.add("policy.hmac_secret is %d bytes: use at least 16 random bytes (e.g. `openssl rand -hex 32`)", len(pol.HMACSecret))
	}
	apps := make([]string, 0, len(pol.Apps))
	for a := range pol.Apps {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	for _, a := range apps {
		if m := pol.Apps[a].Consent; m != ConsentOptIn && m != ConsentTrusted {
			p.add("policy.apps.%s.consent %q: use opt_in or trusted", a, m)
		}
	}
	for kind, limits := range map[string][]FrequencyLimit{"code": pol.Frequency.Code, "notify": pol.Frequency.Notify} {
		for i, l := range limits {
			if l.Max < 1 || l.Window.D() < time.Second || l.Window.D() > 31*24*time.Hour {
				p.add("policy.frequency.%s[%d]: max %d per %s: need max >= 1 and a window between 1s and 744h", kind, i, l.Max, l.Window.D())
			}
		}
	}
	for kind, w := range map[string]QuietWindow{"code": pol.QuietHours.Code, "notify": pol.QuietHours.Notify} {
		if w.Start == "" && w.End == "" {
			continue
		}
		if _, err := ParseClock(w.Start); err != nil {
			p.add("policy.quiet_hours.%s.start: %v", kind, err)
		}
		if _, err := ParseClock(w.End); err != nil {
			p.add("policy.quiet_hours.%s.end: %v", kind, err)
		}
	}
	if _, err := time.LoadLocation(pol.FallbackTimezone); err != nil || pol.FallbackTimezone == "" {
		p.add("policy.fallback_timezone %q: name an IANA time zone such as Asia/Shanghai", pol.FallbackTimezone)
	}
	if pol.TemplateMaxChars < 10 || pol.TemplateMaxChars > 5000 {
		p.add("policy.template_max_chars %d: use 10 to 5000", pol.TemplateMaxChars)
	}
	for i, t := range c.Templates {
		at := fmt.Sprintf("templates[%d]", i)
		if _, err := templates.ParseKind(t.Kind); err != nil {
			p.add("%s.kind: %v", at, err)
		}
		for j, prm := range t.Params {
			if err := prm.Validate(); err != nil {
				p.add("%s.params[%d] (placeholder {%d}): %v", at, j, j+1, err)
			}
		}
		if n, err := templates.Placeholders(c.templateText(t)); err == nil && len(t.Params) > n { // audio.go
			p.add("%s.params: %d constraints but the text has %d placeholders", at, len(t.Params), n)
		}
		keys := make([]string, 0, len(t.KeyActions))
		for k := range t.KeyActions {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, err := templates.ParseKeyAction(k, t.KeyActions[k]); err != nil {
				p.add("%s.key_actions: %v", at, err)
			}
		}
	}
}
