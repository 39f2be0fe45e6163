package queue

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// InputError is a request that was refused before anything was enqueued.
// Code is stable and machine-readable; the message says how to fix it.
type InputError struct {
	Code string
	Msg  string
}

func (e *InputError) Error() string { return e.Msg }

func inputErr(code, format string, args ...any) error {
	return &InputError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Limits from the voice-message clouds vms mirrors.
const (
	MinCodeDigits    = 4
	MaxCodeDigits    = 10
	MinPlayTimes     = 1
	MaxPlayTimes     = 3
	DefaultPlayTimes = 2
	maxMessageIDLen  = 64
)

var (
	codeRE      = regexp.MustCompile(`^[0-9]+$`)
	messageIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	e164RE      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// NormalizeNumber checks that s is a valid E.164 number and returns it in
// canonical form (+CCNNNN...).
func NormalizeNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !e164RE.MatchString(s) {
		return "", inputErr("invalid_number", "number %q is not in E.164 form: write + then the country code and number, digits only (e.g. +8613800138000)", s)
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", inputErr("invalid_number", "number %s is not a valid phone number for its country code", MaskNumber(s))
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

func checkCode(code string) error {
	if !codeRE.MatchString(code) || len(code) < MinCodeDigits || len(code) > MaxCodeDigits {
		return inputErr("invalid_code", "code %q: use %d to %d digits (0-9) only", code, MinCodeDigits, MaxCodeDigits)
	}
	return nil
}

// playTimes applies the default and checks the range.
func playTimes(n int) (int, error) {
	if n == 0 {
		return DefaultPlayTimes, nil
	}
	if n < MinPlayTimes || n > MaxPlayTimes {
		return 0, inputErr("invalid_play_times", "play times %d: use %d to %d", n, MinPlayTimes, MaxPlayTimes)
	}
	return n, nil
}

func checkMessageID(id string) error {
	if len(id) > maxMessageIDLen || !messageIDRE.MatchString(id) {
		return inputErr("invalid_message_id", "message id %q: use 1-%d characters from A-Z a-z 0-9 . _ : - starting with a letter or digit", id, maxMessageIDLen)
	}
	return nil
}

// MaskNumber hides a phone number for logs and output: it keeps the
// country code and at most the last 4 digits, and hides at least half of
// the national number: +8613800138000 becomes +86*******8000, +14155552671
// becomes +1******2671. Anything that is not an E.164 number is hidden whole.
func MaskNumber(s string) string {
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !strings.HasPrefix(s, "+") {
		return strings.Repeat("*", len(s))
	}
	cc := strconv.Itoa(int(n.GetCountryCode()))
	national := strings.TrimPrefix(s, "+"+cc)
	if national == s || national == "" {
		return strings.Repeat("*", len(s))
	}
	keep := min(4, len(national)/2)
	return "+" + cc + strings.Repeat("*", len(national)-keep) + national[len(national)-keep:]
}
