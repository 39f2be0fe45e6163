package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/queue"
)

// Redis keys of the consent and suppression lists. Fields are keyed hashes
// of numbers, never numbers.
func consentKey(app string) string  { return "vms:consent:{" + app + "}" }
func suppressKey(app string) string { return "vms:suppress:{" + app + "}" }

// GlobalScope is the suppression list that applies to every app.
const GlobalScope = "*"

// Consent records that a number agreed to be called by an app.
type Consent struct {
	App string `json:"app"`
	// Number is masked; the list is keyed by the number's keyed hash.
	Number string `json:"number"`
	// Source says how consent was given (e.g. "signup form, checkbox v3").
	Source string `json:"source"`
	// At is when consent was given.
	At         time.Time `json:"at"`
	RecordedBy string    `json:"recorded_by,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
}

// Suppression records that a number must not be called (by one app, or by
// any app when App is GlobalScope).
type Suppression struct {
	App    string `json:"app"`
	Number string `json:"number"` // masked
	Reason string `json:"reason"`
	// Source is optout (the callee pressed the opt-out key) or operator.
	Source string    `json:"source"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
}

func normalize(number string) (string, error) {
	n, err := queue.NormalizeNumber(number)
	if err != nil {
		return "", err
	}
	return n, nil
}

// entry returns a number in E.164 form and its keyed hash, the field that
// stands for it on the consent and suppression lists.
func (e *Engine) entry(ctx context.Context, number string) (n, h string, err error) {
	if n, err = normalize(number); err != nil {
		return "", "", err
	}
	if h, err = e.keys.numberHash(ctx, n); err != nil {
		return "", "", err
	}
	return n, h, nil
}

// putEntry stores v as the field h of the list at key; kind (consent or
// suppression) prefixes the error.
func (e *Engine) putEntry(ctx context.Context, kind, key, h string, v any) error {
	body, _ := json.Marshal(v)
	if err := e.rdb.HSet(ctx, key, h, body).Err(); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

// getEntry reads the field h of the list at key, or nil when it is not there;
// kind (consent or suppression) prefixes the error.
func getEntry[T any](ctx context.Context, rdb redis.UniversalClient, kind, key, h string) (*T, error) {
	s, err := rdb.HGet(ctx, key, h).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("%s: corrupt record: %w", kind, err)
	}
	return &v, nil
}

// removeEntry takes number off the list of app at key and, when it was on it,
// records kind+".removed" in the audit log. It reports whether it was on it.
func (e *Engine) removeEntry(ctx context.Context, kind, key, app, number, by string) (bool, error) {
	n, h, err := e.entry(ctx, number)
	if err != nil {
		return false, err
	}
	removed, err := e.rdb.HDel(ctx, key, h).Result()
	if err != nil {
		return false, fmt.Errorf("%s: %w", kind, err)
	}
	if removed > 0 {
		_, err = e.audit.Record(ctx, kind+".removed", by, queue.MaskNumber(n), map[string]string{"app": app, "number_hash": h})
	}
	return removed > 0, err
}

func checkApp(app string) error {
	if app == GlobalScope {
		return nil
	}
	return queue.CheckAppID(app)
}

// AddConsent records a number's consent for an app.
func (e *Engine) AddConsent(ctx context.Context, app, number, source string, at time.Time, by string) (Consent, error) {
	if err := checkApp(app); err != nil || app == GlobalScope {
		return Consent{}, fmt.Errorf("consent: app %q: name the app the number agreed to (1-64 of A-Z a-z 0-9 . _ -)", app)
	}
	if source == "" {
		return Consent{}, errors.New("consent: say how consent was given (source), e.g. \"signup form 2026-05\"")
	}
	n, h, err := e.entry(ctx, number)
	if err != nil {
		return Consent{}, err
	}
	now := e.now().UTC()
	if at.IsZero() {
		at = now
	}
	c := Consent{App: app, Number: queue.MaskNumber(n), Source: source, At: at.UTC(), RecordedBy: by, RecordedAt: now}
	if err := e.putEntry(ctx, "consent", consentKey(app), h, c); err != nil {
		return Consent{}, err
	}
	_, err = e.audit.Record(ctx, "consent.added", by, c.Number, map[string]string{
		"app": app, "number_hash": h, "source": source, "given_at": c.At.Format(time.RFC3339)})
	return c, err
}

// RemoveConsent withdraws a number's consent for an app. It reports whether
// there was one.
func (e *Engine) RemoveConsent(ctx context.Context, app, number, by string) (bool, error) {
	return e.removeEntry(ctx, "consent", consentKey(app), app, number, by)
}

// ConsentOf returns a number's consent for an app, or nil.
func (e *Engine) ConsentOf(ctx context.Context, app, number string) (*Consent, error) {
	_, h, err := e.entry(ctx, number)
	if err != nil {
		return nil, err
	}
	return e.consentByHash(ctx, app, h)
}

func (e *Engine) consentByHash(ctx context.Context, app, h string) (*Consent, error) {
	return getEntry[Consent](ctx, e.rdb, "consent", consentKey(app), h)
}

// Suppress records that the callee opted out of an app's calls (by pressing
// the template's opt-out key). Telephony calls it when it detects that key;
// the number is refused for that app from then on. app "" or GlobalScope
// suppresses the number for every app.
func (e *Engine) Suppress(ctx context.Context, app, number, reason string) error {
	if reason == "" {
		reason = "pressed the opt-out key during a call"
	}
	_, err := e.AddSuppression(ctx, app, number, reason, "optout", "callee")
	return err
}

// AddSuppression puts a number on a suppression list: app, or GlobalScope
// ("" means GlobalScope). source is optout or operator.
func (e *Engine) AddSuppression(ctx context.Context, app, number, reason, source, by string) (Suppression, error) {
	if app == "" {
		app = GlobalScope
	}
	if err := checkApp(app); err != nil {
		return Suppression{}, err
	}
	n, h, err := e.entry(ctx, number)
	if err != nil {
		return Suppression{}, err
	}
	s := Suppression{App: app, Number: queue.MaskNumber(n), Reason: reason, Source: source, By: by, At: e.now().UTC()}
	if err := e.putEntry(ctx, "suppression", suppressKey(app), h, s); err != nil {
		return Suppression{}, err
	}
	e.log.Info("number suppressed", "app", app, "to", s.Number, "source", source, "reason", reason)
	_, err = e.audit.Record(ctx, "suppression.added", by, s.Number, map[string]string{
		"app": app, "number_hash": h, "reason": reason, "source": source})
	return s, err
}

// RemoveSuppression takes a number off a list; it reports whether it was on it.
func (e *Engine) RemoveSuppression(ctx context.Context, app, number, by string) (bool, error) {
	if app == "" {
		app = GlobalScope
	}
	return e.removeEntry(ctx, "suppression", suppressKey(app), app, number, by)
}

// Suppressions lists a suppression list (GlobalScope or an app), newest first.
func (e *Engine) Suppressions(ctx context.Context, app string) ([]Suppression, error) {
	if app == "" {
		app = GlobalScope
	}
	all, err := e.rdb.HGetAll(ctx, suppressKey(app)).Result()
	if err != nil {
		return nil, fmt.Errorf("suppression: %w", err)
	}
	out := make([]Suppression, 0, len(all))
	for _, v := range all {
		var s Suppression
		if json.Unmarshal([]byte(v), &s) == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out, nil
}

// SuppressionOf returns the suppression that applies to a number for an app
// (the global list first), or nil.
func (e *Engine) SuppressionOf(ctx context.Context, app, number string) (*Suppression, error) {
	_, h, err := e.entry(ctx, number)
	if err != nil {
		return nil, err
	}
	return e.suppressionByHash(ctx, app, h)
}

// SuppressionIn returns a number's entry on one list only (an app's, or
// GlobalScope; "" means GlobalScope), or nil. The HTTP API uses it so an
// app sees its own list and nothing of the global one.
func (e *Engine) SuppressionIn(ctx context.Context, list, number string) (*Suppression, error) {
	if list == "" {
		list = GlobalScope
	}
	_, h, err := e.entry(ctx, number)
	if err != nil {
		return nil, err
	}
	return getEntry[Suppression](ctx, e.rdb, "suppression", suppressKey(list), h)
}

func (e *Engine) suppressionByHash(ctx context.Context, app, h string) (*Suppression, error) {
	for _, scope := range []string{GlobalScope, app} {
		if sup, err := getEntry[Suppression](ctx, e.rdb, "suppression", suppressKey(scope), h); err != nil || sup != nil {
			return sup, err
		}
	}
	return nil, nil
}
