// Package policy enforces vms's compliance rules on every message, at
// enqueue and again right before dialing: suppression lists (global and per
// app), consent (per-app mode opt_in or trusted), banned words in
// parameters, template approval, quiet hours in the callee's local time and
// per-number sliding-window frequency limits kept in Redis across all
// workers. Redis keys that index by number use an HMAC of the number, never
// the number. Every decision at enqueue is written to the audit log.
//
// Engine implements queue.Policy; build it with FromConfig and pass it as
// queue.Options.Policy.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/audit"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/templates"
)

// Kind is what policy limits are configured by.
type Kind = templates.Kind

// Options configures an Engine.
type Options struct {
	// Secret keys number hashes and the audit chain (through keys derived
	// from it). Empty: refused (ErrNoSecret from every keyed operation)
	// unless AllowGeneratedKey.
	Secret []byte
	// AllowGeneratedKey, with no Secret, uses a random key generated once
	// and kept in Redis (policy.allow_generated_key).
	AllowGeneratedKey bool
	// Consent maps an app to config.ConsentOptIn or config.ConsentTrusted;
	// apps not listed use the entry of queue.DefaultApp (trusted if none).
	Consent map[string]string
	// Limits per kind (code, notify).
	Limits map[Kind][]Limit
	// Quiet hours per kind.
	Quiet map[Kind]Window
	// Fallback is the time zone of numbers whose zone is unknown.
	Fallback *time.Location
	// Rules are the template review rules; their banned words apply to
	// parameters at send time.
	Rules templates.Rules
	// Seed are the config file's templates.
	Seed []templates.Template
	// ConfigDigest identifies the configuration; a new digest is audited
	// as config.loaded.
	ConfigDigest string
	// Now is the wall clock; nil means time.Now. Tests set it.
	Now func() time.Time
	Log *slog.Logger
}

// Engine is the policy of one deployment. It is safe for concurrent use.
type Engine struct {
	rdb       redis.UniversalClient
	opts      Options
	keys      *keyring
	audit     *audit.Log
	templates *templates.Store
	log       *slog.Logger
	now       func() time.Time

	startOnce sync.Mutex
	started   bool
}

// New returns an Engine on rdb.
func New(rdb redis.UniversalClient, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Fallback == nil {
		opts.Fallback = time.UTC
	}
	if opts.Rules.Banned == nil && opts.Rules.VerificationWords == nil {
		opts.Rules = templates.DefaultRules()
	}
	e := &Engine{rdb: rdb, opts: opts, keys: &keyring{rdb: rdb, secret: opts.Secret, allowGenerated: opts.AllowGeneratedKey},
		log: opts.Log, now: opts.Now}
	e.audit = audit.New(rdb, e.keys.auditKey, opts.Now)
	e.keys.logExists = e.audit.Exists
	e.templates = templates.NewStore(rdb, templates.StoreOptions{Rules: opts.Rules, Audit: e.audit,
		Seed: opts.Seed, Now: opts.Now, Log: opts.Log})
	return e
}

// FromConfig builds the Engine a configuration describes (validated config).
func FromConfig(cfg *config.Config, rdb redis.UniversalClient, log *slog.Logger) *Engine {
	return New(rdb, OptionsFromConfig(cfg, log))
}

// OptionsFromConfig returns the Options a configuration describes.
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) Options {
	p := cfg.Policy
	opts := Options{Secret: []byte(p.HMACSecret), AllowGeneratedKey: p.AllowGeneratedKey, Consent: map[string]string{},
		Limits: map[Kind][]Limit{}, Quiet: map[Kind]Window{}, Rules: p.ReviewRules(),
		Seed: cfg.TemplateDefs(), Log: log}
	for app, a := range p.Apps {
		opts.Consent[app] = a.Consent
	}
	for kind, ls := range map[Kind][]config.FrequencyLimit{templates.KindCode: p.Frequency.Code, templates.KindNotify: p.Frequency.Notify} {
		for _, l := range ls {
			opts.Limits[kind] = append(opts.Limits[kind], Limit{Max: l.Max, Window: l.Window.D()})
		}
	}
	for kind, w := range map[Kind]config.QuietWindow{templates.KindCode: p.QuietHours.Code, templates.KindNotify: p.QuietHours.Notify} {
		if w.Start == "" && w.End == "" {
			continue
		}
		s, _ := config.ParseClock(w.Start)
		en, _ := config.ParseClock(w.End)
		opts.Quiet[kind] = Window{Start: s, End: en}
	}
	opts.Fallback, _ = time.LoadLocation(p.FallbackTimezone)
	// The digest covers what decides sends, never the secret.
	p.HMACSecret = ""
	body, _ := json.Marshal(struct {
		Policy    config.Policy
		Templates []templates.Template
	}{p, opts.Seed})
	sum := sha256.Sum256(body)
	opts.ConfigDigest = hex.EncodeToString(sum[:])
	return opts
}

// Templates returns the template registry (in Redis, seeded from the config).
func (e *Engine) Templates() *templates.Store { return e.templates }

// Audit returns the audit log.
func (e *Engine) Audit() *audit.Log { return e.audit }

// NumberHash returns the keyed hash that stands for a number in Redis keys
// and audit entries.
func (e *Engine) NumberHash(ctx context.Context, number string) (string, error) {
	_, h, err := e.entry(ctx, number)
	return h, err
}

// ConsentMode returns an app's consent mode.
func (e *Engine) ConsentMode(app string) string {
	if m, ok := e.opts.Consent[app]; ok {
		return m
	}
	if m, ok := e.opts.Consent[queue.DefaultApp]; ok {
		return m
	}
	return config.ConsentTrusted
}

// Start loads the hashing key (ErrNoSecret without a secret, unless a
// generated key is allowed), seeds the config's templates and audits a
// changed configuration. It runs once; CheckSend calls it, so calling it is
// optional.
func (e *Engine) Start(ctx context.Context) error {
	e.startOnce.Lock()
	defer e.startOnce.Unlock()
	if e.started {
		return nil
	}
	// No secret and no generated key allowed: fail here, at start-up.
	if err := e.keys.load(ctx); err != nil {
		return err
	}
	if err := e.templates.Seed(ctx); err != nil {
		return err
	}
	if e.opts.ConfigDigest != "" {
		prev, err := e.rdb.GetSet(ctx, "vms:policy:config-digest", e.opts.ConfigDigest).Result()
		if err != nil && err != redis.Nil {
			return fmt.Errorf("policy: %w", err)
		}
		if prev != e.opts.ConfigDigest {
			if _, err := e.audit.Record(ctx, "config.loaded", "config", "", map[string]string{
				"digest": e.opts.ConfigDigest, "previous_digest": prev}); err != nil {
				return err
			}
		}
	}
	e.started = true
	return nil
}

// kindOf returns the policy kind of a message and its template, if any.
func (e *Engine) kindOf(ctx context.Context, m queue.Message) (Kind, *templates.Template, error) {
	if m.Kind == queue.KindCode {
		return templates.KindCode, nil, nil
	}
	t, err := e.templates.Template(ctx, m.TemplateID)
	if err != nil {
		return templates.KindNotify, nil, nil // the template check reports it
	}
	return t.KindOf(), &t, nil
}

func refuse(code, format string, args ...any) queue.Decision {
	return queue.Decision{Verdict: queue.Refuse, Code: code, Reason: code + ": " + fmt.Sprintf(format, args...)}
}

// CheckSend implements queue.Policy: suppression, template approval, banned
// words, consent, quiet hours, then frequency limits (which count the
// message when it is allowed or deferred).
func (e *Engine) CheckSend(ctx context.Context, m queue.Message, stage queue.Stage) (queue.Decision, error) {
	if err := e.Start(ctx); err != nil {
		return queue.Decision{}, err
	}
	app := m.AppID
	if app == "" {
		app = queue.DefaultApp
	}
	hash, err := e.keys.numberHash(ctx, m.To)
	if err != nil {
		return queue.Decision{}, err
	}
	kind, tmpl, err := e.kindOf(ctx, m)
	if err != nil {
		return queue.Decision{}, err
	}
	d, err := e.decide(ctx, m, app, hash, kind, tmpl, stage)
	if err != nil {
		return d, err
	}
	masked := queue.MaskNumber(m.To)
	if d.Verdict != queue.Allow {
		e.log.Info("policy", "message_id", m.ID, "to", masked, "app", app, "stage", stage, "reason", d.Reason)
	}
	if stage == queue.StageEnqueue || d.Verdict != queue.Allow {
		typ := map[queue.Verdict]string{queue.Allow: "send.accepted", queue.Defer: "send.deferred", queue.Refuse: "send.refused"}[d.Verdict]
		data := map[string]string{"app": app, "kind": string(kind), "to": masked, "number_hash": hash,
			"stage": string(stage), "code": d.Code, "reason": d.Reason}
		if m.TemplateID != "" {
			data["template"] = m.TemplateID
		}
		if !d.NotBefore.IsZero() {
			data["not_before"] = d.NotBefore.UTC().Format(time.RFC3339)
		}
		if _, err := e.audit.Record(ctx, typ, "app:"+app, m.ID, data); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (e *Engine) decide(ctx context.Context, m queue.Message, app, hash string, kind Kind, tmpl *templates.Template, stage queue.Stage) (queue.Decision, error) {
	if s, err := e.suppressionByHash(ctx, app, hash); err != nil {
		return queue.Decision{}, err
	} else if s != nil {
		scope := "app " + app
		if s.App == GlobalScope {
			scope = "all apps"
		}
		return refuse("blocked", "%s is on the suppression list of %s since %s (%s: %s); remove it with vms suppress remove if this is wrong",
			queue.MaskNumber(m.To), scope, s.At.Format("2006-01-02"), s.Source, s.Reason), nil
	}
	if m.Kind == queue.KindTTS {
		if tmpl == nil {
			return refuse("template_not_approved", "template %q does not exist", m.TemplateID), nil
		}
		if tmpl.Status != templates.StatusApproved {
			return refuse("template_not_approved", "template %q is %s: only approved templates can be sent", tmpl.ID, tmpl.Status), nil
		}
		for i, p := range m.Params {
			if found := e.opts.Rules.Banned.Find(p); len(found) > 0 {
				return refuse("banned_word", "parameter %d contains banned words: %s", i+1, strings.Join(found, ", ")), nil
			}
		}
	}
	if e.ConsentMode(app) == config.ConsentOptIn {
		c, err := e.consentByHash(ctx, app, hash)
		if err != nil {
			return queue.Decision{}, err
		}
		if c == nil {
			return refuse("no_consent", "app %s calls only numbers that opted in, and %s has not: record consent with vms consent add", app, queue.MaskNumber(m.To)), nil
		}
	}
	now := e.now()
	at := now
	var deferReason string
	if w, ok := e.opts.Quiet[kind]; ok && w.On() {
		zones := Zones(m.To, e.opts.Fallback)
		if quiet, next, zone := quietCheck(w, zones, now); quiet {
			local := now.In(zone).Format("15:04")
			switch {
			case kind == templates.KindCode:
				return refuse("quiet_hours", "no code calls between %s and %s in %s (it is %s there); try again after %s",
					hhmm(w.Start), hhmm(w.End), zone, local, next.In(zone).Format("15:04")), nil
			case tmpl != nil && tmpl.Urgent:
				// Urgent notifications go out at night.
			default:
				at = next
				deferReason = fmt.Sprintf("quiet_hours: deferred to %s %s (it is %s there)", next.In(zone).Format("15:04"), zone, local)
			}
		}
	}
	f, err := e.checkFrequency(ctx, app, hash, m.ID, at, e.opts.Limits[kind], true)
	if err != nil {
		return queue.Decision{}, err
	}
	if !f.ok {
		return refuse("frequency_limited", "%d calls in %s to %s (at most %d per %s for %s calls); next allowed after %s",
			f.count, FormatWindow(f.limit.Window), queue.MaskNumber(m.To), f.limit.Max, FormatWindow(f.limit.Window), kind,
			f.retryAt.UTC().Format(time.RFC3339)), nil
	}
	if deferReason != "" {
		return queue.Decision{Verdict: queue.Defer, Code: "quiet_hours", Reason: deferReason, NotBefore: at}, nil
	}
	return queue.Decision{Verdict: queue.Allow}, nil
}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// Release implements queue.Policy: the message will not be called, so it
// no longer counts against the number's limits.
func (e *Engine) Release(ctx context.Context, m queue.Message) error {
	app := m.AppID
	if app == "" {
		app = queue.DefaultApp
	}
	hash, err := e.keys.numberHash(ctx, m.To)
	if err != nil {
		return err
	}
	return e.releaseFrequency(ctx, app, hash, m.ID)
}
