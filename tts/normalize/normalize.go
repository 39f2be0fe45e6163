// Package normalize rewrites template parameters into the words a person would say,
// in Chinese or English, before they reach a speech engine: codes and phone numbers
// digit by digit, amounts, money, dates, times and percentages as spoken ("¥1,280.50"
// → 一千二百八十元五角 or "one thousand two hundred eighty yuan and fifty fen";
// "2026-12-01" → 二零二六年十二月一日 or "December first, twenty twenty-six").
package normalize

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// As says how a parameter is read.
type As string

// The ways a parameter can be read.
const (
	// Text is spoken as given (the default).
	Text As = "text"
	// Digits: every digit on its own, for codes, phone and order numbers; letters are
	// kept, spaces and dashes dropped.
	Digits As = "digits"
	// Number: an integer or decimal, "1,280.5", "-3", or a percentage "12.5%".
	Number As = "number"
	// Money: an amount with ¥, ￥, $, 元, "RMB", "CNY", "USD" (no sign: yuan).
	Money As = "money"
	// Date: 2026-12-01, 2026/12/01, 2026.12.01, 2026年12月1日, or 12-01 (month and day).
	Date As = "date"
	// Time: 14:05, 9:30, 14:05:30 (24-hour clock).
	Time As = "time"
)

// ParseAs checks a reading name; "" is Text.
func ParseAs(s string) (As, error) {
	switch a := As(strings.ToLower(strings.TrimSpace(s))); a {
	case "":
		return Text, nil
	case Text, Digits, Number, Money, Date, Time:
		return a, nil
	}
	return "", fmt.Errorf("as %q: use digits, number, money, date, time or text", s)
}

// Chinese reports whether a language or voice code is Chinese (zh, zh-CN, cmn, yue…).
func Chinese(lang string) bool {
	l := strings.ToLower(lang)
	return l == "zh" || l == "cmn" || l == "yue" || strings.HasPrefix(l, "zh-") || strings.HasPrefix(l, "zh_") || strings.HasPrefix(l, "cmn-")
}

// Value returns v read as a, in Chinese when lang is Chinese (see Chinese) and in
// English otherwise. A value that does not fit a (a date that is no date) is an error
// that says what was expected.
func Value(v string, a As, lang string) (string, error) {
	zh := Chinese(lang)
	v = strings.TrimSpace(v)
	switch a {
	case "", Text:
		return v, nil
	case Digits:
		return digits(v, zh)
	case Number:
		return number(v, zh)
	case Money:
		return money(v, zh)
	case Date:
		return date(v, zh)
	case Time:
		return clock(v, zh)
	}
	return "", fmt.Errorf("unknown reading %q", a)
}

var digitsRE = regexp.MustCompile(`^[+]?[0-9A-Za-z][0-9A-Za-z \-()#*]*$`)

func digits(v string, zh bool) (string, error) {
	if !digitsRE.MatchString(v) {
		return "", fmt.Errorf("%q is not a code or phone number: use digits and letters (spaces and dashes are ignored)", v)
	}
	var words []string
	if strings.HasPrefix(v, "+") {
		words = append(words, map[bool]string{true: "加", false: "plus"}[zh])
	}
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			if zh {
				words = append(words, zhDigitsCode[r-'0'])
			} else {
				words = append(words, enOnes[r-'0'])
			}
		case r == '*':
			words = append(words, map[bool]string{true: "星", false: "star"}[zh])
		case r == '#':
			words = append(words, map[bool]string{true: "井", false: "pound"}[zh])
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			words = append(words, strings.ToUpper(string(r)))
		}
	}
	return strings.Join(words, " "), nil
}

// numRE matches a decimal number with optional sign and thousands separators.
var numRE = regexp.MustCompile(`^([+-]?)((?:\d{1,3}(?:,\d{3})+)|\d+)(?:\.(\d+))?$`)

// parsed is a decimal number as written: its sign, integer digits and fraction digits.
type parsed struct {
	neg        bool
	int, frac  string
	intVal     *big.Int
	fracDigits int
}

func parseNumber(v string) (parsed, bool) {
	m := numRE.FindStringSubmatch(v)
	if m == nil {
		return parsed{}, false
	}
	p := parsed{neg: m[1] == "-", int: strings.ReplaceAll(m[2], ",", ""), frac: m[3]}
	p.intVal, _ = new(big.Int).SetString(p.int, 10)
	if len(p.int) > 16 {
		return parsed{}, false // beyond 10^16: read it with digits
	}
	return p, true
}

func number(v string, zh bool) (string, error) {
	pct := false
	if s, ok := strings.CutSuffix(v, "%"); ok {
		v, pct = strings.TrimSpace(s), true
	} else if s, ok := strings.CutSuffix(v, "％"); ok {
		v, pct = strings.TrimSpace(s), true
	}
	p, ok := parseNumber(v)
	if !ok {
		return "", fmt.Errorf("%q is not a number: write e.g. 1280, 1,280.5, -3 or 12.5%%", v)
	}
	if zh {
		s := zhDecimal(p)
		if pct {
			if p.neg {
				return "负百分之" + strings.TrimPrefix(s, "负"), nil
			}
			return "百分之" + s, nil
		}
		return s, nil
	}
	s := enDecimal(p)
	if pct {
		s += " percent"
	}
	return s, nil
}
