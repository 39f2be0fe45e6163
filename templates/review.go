package templates

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Finding is the result of one automated review check.
type Finding struct {
	// Check names the rule: utf8, placeholders, only_placeholders, length,
	// verification_word, code_placeholder, banned_word, params, key_actions, kind.
	Check string `json:"check"`
	// Severity is error (approval is refused unless forced) or warning.
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// Finding severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Rules are the automated review rules.
type Rules struct {
	// Banned words may appear neither in a template nor in a parameter.
	Banned *WordList
	// VerificationWords: a code template must contain one of the words of
	// its language (the language's base, e.g. zh for zh-CN).
	VerificationWords map[string][]string
	// MaxTextChars is the longest template text, in characters.
	MaxTextChars int
}

// DefaultMaxTextChars is the default length limit of a template text.
const DefaultMaxTextChars = 500

// DefaultVerificationWords are the words a code template must contain one of.
var DefaultVerificationWords = map[string][]string{
	"zh": {"验证码", "校验码", "动态码", "确认码", "驗證碼"},
	"en": {"code", "verification", "passcode", "one-time password", "OTP"},
}

// DefaultRules returns the rules with the built-in lists.
func DefaultRules() Rules {
	return Rules{Banned: NewWordList(DefaultBannedWords), VerificationWords: DefaultVerificationWords,
		MaxTextChars: DefaultMaxTextChars}
}

// Check runs the automated checks on t and returns what they found, errors
// first. It does not change t.
func Check(t Template, r Rules) []Finding {
	var out []Finding
	add := func(check, sev, format string, args ...any) {
		out = append(out, Finding{Check: check, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	if _, err := ParseKind(string(t.Kind)); err != nil {
		add("kind", SeverityError, "%v", err)
	}
	if !utf8.ValidString(t.Text) {
		add("utf8", SeverityError, "text is not valid UTF-8: save it as UTF-8")
	}
	n, err := Placeholders(t.Text)
	if err != nil {
		add("placeholders", SeverityError, "%v", err)
	}
	if strings.TrimFunc(placeholderRE.ReplaceAllString(t.Text, ""), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
	}) == "" {
		add("only_placeholders", SeverityError, "text is made only of placeholders: a template must say something itself")
	}
	max := r.MaxTextChars
	if max <= 0 {
		max = DefaultMaxTextChars
	}
	if c := utf8.RuneCountInString(t.Text); c > max {
		add("length", SeverityError, "text is %d characters long: at most %d are allowed", c, max)
	}
	if len(t.Params) > n && err == nil {
		add("params", SeverityError, "constraints are given for %d placeholders but the text has %d", len(t.Params), n)
	}
	for i, p := range t.Params {
		if err := p.Validate(); err != nil {
			add("params", SeverityError, "placeholder {%d}: %v", i+1, err)
		}
	}
	if t.KindOf() == KindCode {
		words := r.VerificationWords[baseLanguage(t.Language)]
		if len(words) == 0 {
			add("verification_word", SeverityWarning, "no verification words are configured for language %q: the reviewer must check that the text says it is a verification code", t.Language)
		} else if !containsAnyFold(t.Text, words) {
			add("verification_word", SeverityError, "a code template must say it is a verification code: use one of %s", strings.Join(words, ", "))
		}
		digits := false
		for i := 1; i <= n; i++ {
			digits = digits || t.Param(i).DigitsOnly
		}
		if !digits {
			add("code_placeholder", SeverityError, "a code template needs a digits-only placeholder for the code: give it as: digits")
		}
		if t.Urgent {
			add("urgent", SeverityWarning, "urgent has no effect on a code template: code calls are never made in quiet hours")
		}
	}
	if r.Banned != nil {
		if found := r.Banned.Find(t.Text); len(found) > 0 {
			add("banned_word", SeverityError, "text contains banned words: %s", strings.Join(found, ", "))
		}
	}
	keys := make([]string, 0, len(t.KeyActions))
	for k := range t.KeyActions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := ParseKeyAction(k, string(t.KeyActions[k])); err != nil {
			add("key_actions", SeverityError, "%v", err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Severity == SeverityError && out[j].Severity != SeverityError
	})
	return out
}

// baseLanguage returns "zh" for "zh-CN", "zh_TW" or "cmn".
func baseLanguage(l string) string {
	l = strings.ToLower(l)
	if i := strings.IndexAny(l, "-_"); i > 0 {
		l = l[:i]
	}
	switch l {
	case "cmn", "yue", "zho", "chi":
		return "zh"
	case "eng":
		return "en"
	}
	return l
}

func containsAnyFold(s string, words []string) bool {
	for _, w := range words {
		if NewWordList([]string{w}).Find(s) != nil {
			return true
		}
	}
	return false
}
