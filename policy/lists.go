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
	n, err := normalize(number)
	if err != nil {
		return Consent{}, err
	}
	h, err := e.keys.numberHash(ctx, n)
	if err != nil {
		return Consent{}, err
	}
	now := e.now().UTC()
	if at.IsZero() {
		at = now
	}
	c := Consent{App: app, Number: queue.MaskNumber(n), Source: source, At: at.UTC(), RecordedBy: by, RecordedAt: now}
	body, _ := json.Marshal(c)
	if err := e.rdb.HSet(ctx, consentKey(app), h, body).Err(); err != nil {
		return Consent{}, fmt.Errorf("consent: %w", err)
	}
	_, err = e.audit.Record(ctx, "consent.added", by, c.Number, map[string]string{
		"app": app, "number_hash": h, "source": source, "given_at": c.At.Format(time.RFC3339)})
	return c, err
}

// RemoveConsent withdraws a number's consent for an app. It reports whether
// there was one.
func (e *Engine) RemoveConsent(ctx context.Context, app, number, by string) (bool, error) {
	n, err := normalize(number)
	if err != nil {
		return false, err
	}
	h, err := e.keys.numberHash(ctx, n)
	if err != nil {
		return false, err
	}
	removed, err := e.rdb.HDel(ctx, consentKey(app), h).Result()
	if err != nil {
		return false, fmt.Errorf("consent: %w", err)
	}
	if removed > 0 {
		_, err = e.audit.Record(ctx, "consent.removed", by, queue.MaskNumber(n), map[string]string{"app": app, "number_hash": h})
	}
	return removed > 0, err
}

// ConsentOf returns a number's consent for an app, or nil.
func (e *Engine) ConsentOf(ctx context.Context, app, number string) (*Consent, error) {
	n, err := normalize(number)
	if err != nil {
		return nil, err
	}
	h, err := e.keys.numberHash(ctx, n)
	if err != nil {
		return nil, err
	}
	return e.consentByHash(ctx, app, h)
}

func (e *Engine) consentByHash(ctx context.Context, app, h string) (*Consent, error) {
	s, err := e.rdb.HGet(ctx, consentKey(app), h).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}
	var c Consent
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("consent: corrupt record: %w", err)
	}
	return &c, nil
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
	n, err := normalize(number)
	if err != nil {
		return Suppression{}, err
	}
	h, err := e.keys.numberHash(ctx, n)
	if err != nil {
		return Suppression{}, err
	}
	s := Suppression{App: app, Number: queue.MaskNumber(n), Reason: reason, Source: source, By: by, At: e.now().UTC()}
	body, _ := json.Marshal(s)
	if err := e.rdb.HSet(ctx, suppressKey(app), h, body).Err(); err != nil {
		return Suppression{}, fmt.Errorf("suppression: %w", err)
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
	n, err := normalize(number)
	if err != nil {
		return false, err
	}
	h, err := e.keys.numberHash(ctx, n)
	if err != nil {
		return false, err
	}
	removed, err := e.rdb.HDel(ctx, suppressKey(app), h).Result()
	if err != nil {
		return false, fmt.Errorf("suppression: %w", err)
	}
	if removed > 0 {
		_, err = e.audit.Record(ctx, "suppression.removed", by, queue.MaskNumber(n), map[string]string{"app": app, "number_hash": h})
	}
	return removed > 0, err
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
	n, err := normalize(number)
	if err != nil {
		return nil, err
	}
	h, err := e.keys.numberHash(ctx, n)
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
	n, err := normalize(number)
	if err != nil {
		return nil, err
	}
	h, err := e.keys.numberHash(ctx, n)
	if err != nil {
		return nil, err
	}
	s, err := e.rdb.HGet(ctx, suppressKey(list), h).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("suppression: %w", err)
	}
	var sup Suppression
	if err := json.Unmarshal([]byte(s), &sup); err != nil {
		return nil, fmt.Errorf("suppression: corrupt record: %w", err)
	}
	return &sup, nil
}

func (e *Engine) suppressionByHash(ctx context.Context, app, h string) (*Suppression, error) {
	for _, scope := range []string{GlobalScope, app} {
		s, err := e.rdb.HGet(ctx, suppressKey(scope), h).Result()
		if errors.Is(err, redis.Nil) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("suppression: %w", err)
		}
		var sup Suppression
		if err := json.Unmarshal([]byte(s), &sup); err != nil {
			return nil, fmt.Errorf("suppression: corrupt record: %w", err)
		}
		return &sup, nil
	}
	return nil, nil
}
