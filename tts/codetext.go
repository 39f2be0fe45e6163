package tts

import (
	"strings"
	"unicode"
)

// CodeText returns prefix followed by the characters of digits spoken one by one, as
// text for a verification-code prompt. Each digit (or letter) of digits becomes its own
// clause, so espeak-ng says "one, two, three" with a short pause after each instead of
// "one thousand two hundred ..."; spaces, dashes and other separators in digits are
// dropped. A prefix containing Chinese characters gets full-width punctuation, which
// espeak-ng's Mandarin voice also pauses on:
//
//	CodeText("Your verification code is", "1234") == "Your verification code is 1, 2, 3, 4."
//	CodeText("您的验证码是", "1234") == "您的验证码是 1，2，3，4。"
func CodeText(prefix, digits string) string {
	sep, end := ", ", "."
	if strings.IndexFunc(prefix, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0 {
		sep, end = "，", "。"
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(prefix))
	n := 0
	for _, r := range digits {
		if !unicode.IsDigit(r) && !unicode.IsLetter(r) {
			continue
		}
		switch {
		case n > 0:
			b.WriteString(sep)
		case b.Len() > 0:
			b.WriteByte(' ')
		}
		b.WriteRune(r)
		n++
	}
	if n > 0 {
		b.WriteString(end)
	}
	return b.String()
}
