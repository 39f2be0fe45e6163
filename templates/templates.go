// Package templates holds notification templates: texts with {1}, {2}...
// placeholders that only an approved template may speak.
package templates

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is the review state of a template.
type Status string

// Review states. Only StatusApproved may be sent.
const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusRejected Status = "rejected"
	StatusDisabled Status = "disabled"
)

// ParseStatus checks a status word.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusPending, StatusApproved, StatusRejected, StatusDisabled:
		return st, nil
	}
	return "", fmt.Errorf("status %q is not one of pending, approved, rejected, disabled", s)
}

// MaxParamLen is the longest parameter value, in characters.
const MaxParamLen = 32

// Template is one template: its content (what a reviewer approves) and its
// review state. Any change to the content of an approved template puts it
// back to pending (see Store.Put).
type Template struct {
	ID string `json:"id"`
	// Name is a human label shown in lists.
	Name string `json:"name,omitempty"`
	// Kind is code (a verification template) or notify; empty means notify.
	Kind     Kind   `json:"kind,omitempty"`
	Text     string `json:"text"`
	Language string `json:"language,omitempty"`
	Voice    string `json:"voice,omitempty"`
	// Params holds the constraints of {1}, {2}... in order; placeholders
	// without an entry take the defaults (text, at most MaxParamLen
	// characters, no URLs).
	Params []Param `json:"params,omitempty"`
	// KeyActions maps a DTMF key ("0"-"9", "*", "#") to what pressing it
	// during the call does.
	KeyActions map[string]KeyAction `json:"key_actions,omitempty"`
	// Urgent notifications are not deferred by quiet hours.
	Urgent bool `json:"urgent,omitempty"`

	// Sound (templates/audio.go): where it comes from (tts, audio, mixed), the
	// recording or segments, and the engine, rate and volume of its speech.
	Source   Source    `json:"source,omitempty"`
	Audio    string    `json:"audio,omitempty"`
	Segments []Segment `json:"segments,omitempty"`
	Engine   string    `json:"engine,omitempty"`
	Rate     float64   `json:"rate,omitempty"`
	Volume   float64   `json:"volume,omitempty"`
	// Pins are the SHA-256 of each recording (by reference) when the template
	// was approved: review state, like Status. A recording that no longer
	// matches makes the template unsendable.
	Pins map[string]string `json:"pins,omitempty"`

	// Review state.
	Status     Status    `json:"status"`
	Reviewer   string    `json:"reviewer,omitempty"`
	ReviewedAt time.Time `json:"reviewed_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	// Findings are the automated review checks' results (see Check).
	Findings  []Finding `json:"findings,omitempty"`
	Version   int       `json:"version,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

var placeholderRE = regexp.MustCompile(`\{(\d+)\}`)

// Placeholders returns how many placeholders text has. They must be numbered
// consecutively from {1}; each number may appear more than once.
func Placeholders(text string) (int, error) {
	seen := map[int]bool{}
	max := 0
	for _, m := range placeholderRE.FindAllStringSubmatch(text, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 {
			return 0, fmt.Errorf("placeholder {%s}: placeholders are numbered from {1}", m[1])
		}
		seen[n] = true
		if n > max {
			max = n
		}
	}
	for i := 1; i <= max; i++ {
		if !seen[i] {
			return 0, fmt.Errorf("placeholder {%d} is missing: number placeholders consecutively from {1}", i)
		}
	}
	return max, nil
}

// CheckParams reports whether params fit the template: one value per
// placeholder, each non-empty, valid UTF-8 and within its constraints
// (length, digits only, URLs; see Param).
func (t Template) CheckParams(params []string) error {
	n, err := Placeholders(t.Text)
	if err != nil {
		return fmt.Errorf("template %s: %w", t.ID, err)
	}
	if len(params) != n {
		return fmt.Errorf("template %s has %d placeholder(s) but %d parameter(s) were given: pass one --param per placeholder", t.ID, n, len(params))
	}
	for i, p := range params {
		switch {
		case strings.TrimSpace(p) == "":
			return fmt.Errorf("parameter %d of template %s is empty", i+1, t.ID)
		case !utf8.ValidString(p):
			return fmt.Errorf("parameter %d of template %s is not valid UTF-8", i+1, t.ID)
		}
		if err := t.Param(i + 1).check(p); err != nil {
			return fmt.Errorf("parameter %d of template %s %w", i+1, t.ID, err)
		}
	}
	return nil
}

// Fill returns the text with each {n} replaced by params[n-1].
func (t Template) Fill(params []string) (string, error) {
	if err := t.CheckParams(params); err != nil {
		return "", err
	}
	return placeholderRE.ReplaceAllStringFunc(t.Text, func(m string) string {
		n, _ := strconv.Atoi(m[1 : len(m)-1])
		return params[n-1]
	}), nil
}

// ErrNotFound is returned by a Registry for an unknown template ID.
var ErrNotFound = errors.New("template not found")

// Registry looks templates up by ID.
type Registry interface {
	Template(ctx context.Context, id string) (Template, error)
}

// Static is a Registry held in memory, e.g. the config file's list.
type Static map[string]Template

// Template implements Registry.
func (s Static) Template(_ context.Context, id string) (Template, error) {
	t, ok := s[id]
	if !ok {
		return Template{}, fmt.Errorf("template %q: %w", id, ErrNotFound)
	}
	return t, nil
}
