package templates

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Kind says what a template is for. Policy (frequency limits, quiet hours)
// is configured per kind.
type Kind string

// Template kinds.
const (
	KindCode   Kind = "code"   // a verification template: must name the code; never deferred
	KindNotify Kind = "notify" // a notification: deferred out of quiet hours unless urgent
)

// ParseKind checks a kind word; "" means notify.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case "":
		return KindNotify, nil
	case KindCode, KindNotify:
		return k, nil
	}
	return "", fmt.Errorf("kind %q is not one of code, notify", s)
}

// KindOf returns t's kind, notify when unset.
func (t Template) KindOf() Kind {
	if t.Kind == "" {
		return KindNotify
	}
	return t.Kind
}

// KeyAction is what a DTMF key does during a call.
type KeyAction string

// Key actions.
const (
	KeyRepeat  KeyAction = "repeat"  // play the message again from the start
	KeyConfirm KeyAction = "confirm" // record the callee's confirmation
	KeyOptOut  KeyAction = "optout"  // suppress the number for the app: never called again
)

// ParseKeyAction checks a key and its action.
func ParseKeyAction(key, action string) (KeyAction, error) {
	if len(key) != 1 || !strings.Contains("0123456789*#", key) {
		return "", fmt.Errorf("key %q: use one of 0-9, * or #", key)
	}
	switch a := KeyAction(action); a {
	case KeyRepeat, KeyConfirm, KeyOptOut:
		return a, nil
	}
	return "", fmt.Errorf("key %s: action %q is not one of repeat, confirm, optout", key, action)
}

// OptOutKey returns the key that opts the callee out, if the template has one.
func (t Template) OptOutKey() (string, bool) {
	for k, a := range t.KeyActions {
		if a == KeyOptOut {
			return k, true
		}
	}
	return "", false
}

// Param constrains the value of one placeholder.
type Param struct {
	// As says how the value is spoken: text (default), digits (one by
	// one, like a code; implies digits only), number, money, date, time.
	As string `json:"as,omitempty" yaml:"as"`
	// DigitsOnly refuses any value that is not made of 0-9.
	DigitsOnly bool `json:"digits_only,omitempty" yaml:"digits_only"`
	// MaxLen is the longest value in characters; 0 means MaxParamLen.
	MaxLen int `json:"max_len,omitempty" yaml:"max_len"`
	// AllowURLs lets the value contain a web address (refused otherwise).
	AllowURLs bool `json:"allow_urls,omitempty" yaml:"allow_urls"`
}

// MaxParamLenLimit is the largest max_len a placeholder may declare.
const MaxParamLenLimit = 100

// SpeakAs lists the valid values of Param.As.
var SpeakAs = []string{"text", "digits", "number", "money", "date", "time"}

// Param returns the constraints of placeholder {n} (1-based), with defaults
// filled in.
func (t Template) Param(n int) Param {
	var p Param
	if n >= 1 && n <= len(t.Params) {
		p = t.Params[n-1]
	}
	if p.As == "" {
		p.As = "text"
	}
	if p.As == "digits" {
		p.DigitsOnly = true
	}
	if p.MaxLen <= 0 {
		p.MaxLen = MaxParamLen
	}
	return p
}

// Validate checks the constraint itself.
func (p Param) Validate() error {
	ok := p.As == ""
	for _, a := range SpeakAs {
		ok = ok || p.As == a
	}
	if !ok {
		return fmt.Errorf("as %q is not one of %s", p.As, strings.Join(SpeakAs, ", "))
	}
	if p.MaxLen < 0 || p.MaxLen > MaxParamLenLimit {
		return fmt.Errorf("max_len %d: use 1 to %d (0 means %d)", p.MaxLen, MaxParamLenLimit, MaxParamLen)
	}
	return nil
}

var (
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
	// urlRE finds web addresses: a scheme, www., or a host under a common
	// top-level domain.
	urlRE = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://|\bwww\.|\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|cn|net|org|info|biz|io|co|me|cc|tv|xyz|top|vip|app|link|ly|club|site|online|shop|tk)\b)`)
)

// ContainsURL reports whether s contains something that looks like a web address.
func ContainsURL(s string) bool { return urlRE.MatchString(s) }

// check tests one value; the error reads after "parameter N of template T".
func (p Param) check(v string) error {
	if n := utf8.RuneCountInString(v); n > p.MaxLen {
		return fmt.Errorf("is %d characters long: at most %d are allowed", n, p.MaxLen)
	}
	if p.DigitsOnly && !digitsRE.MatchString(v) {
		return fmt.Errorf("must be digits only (0-9), got %q", v)
	}
	if err := checkSpeakAs(p.As, v); err != nil { // templates/audio.go
		return err
	}
	if !p.AllowURLs && ContainsURL(v) {
		return fmt.Errorf("contains a web address, which this placeholder does not allow (set allow_urls on it)")
	}
	return nil
}
