package normalize

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type currency int

const (
	cny currency = iota
	usd
)

var currencyMarks = []struct {
	mark   string
	cur    currency
	prefix bool
}{
	{"US$", usd, true}, {"USD", usd, true}, {"$", usd, true}, {"¥", cny, true}, {"￥", cny, true},
	{"RMB", cny, true}, {"CNY", cny, true},
	{"美元", usd, false}, {"USD", usd, false}, {"元", cny, false}, {"块", cny, false}, {"RMB", cny, false}, {"CNY", cny, false},
}

func money(v string, zh bool) (string, error) {
	cur, amount, neg := cny, v, false
	if s, ok := strings.CutPrefix(amount, "-"); ok {
		amount, neg = strings.TrimSpace(s), true
	}
	for _, m := range currencyMarks {
		if m.prefix {
			if s, ok := strings.CutPrefix(amount, m.mark); ok {
				cur, amount = m.cur, strings.TrimSpace(s)
				break
			}
		} else if s, ok := strings.CutSuffix(amount, m.mark); ok {
			cur, amount = m.cur, strings.TrimSpace(s)
			break
		}
	}
	p, ok := parseNumber(amount)
	if !ok || p.neg || len(p.frac) > 2 {
		return "", fmt.Errorf("%q is not an amount of money: write e.g. ¥1,280.50, $12.30 or 1280.5元 (at most 2 decimals)", v)
	}
	p.neg = neg
	cents := 0
	if p.frac != "" {
		f := p.frac
		if len(f) == 1 {
			f += "0"
		}
		cents, _ = strconv.Atoi(f)
	}
	if zh {
		return zhMoney(cur, p, cents), nil
	}
	return enMoney(cur, p, cents), nil
}

var (
	ymdRE = regexp.MustCompile(`^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$`)
	mdRE  = regexp.MustCompile(`^(\d{1,2})\s*[-/月]\s*(\d{1,2})\s*[日号]?$`)
)

func date(v string, zh bool) (string, error) {
	var y, m, d int
	if g := ymdRE.FindStringSubmatch(v); g != nil {
		y, m, d = atoi(g[1]), atoi(g[2]), atoi(g[3])
	} else if g := mdRE.FindStringSubmatch(v); g != nil {
		m, d = atoi(g[1]), atoi(g[2])
	} else {
		return "", fmt.Errorf("%q is not a date: write 2026-12-01, 2026/12/01, 2026年12月1日 or 12-01", v)
	}
	checkYear := y
	if checkYear == 0 {
		checkYear = 2024 // a leap year, so 02-29 passes without a year
	}
	if m < 1 || m > 12 || d < 1 || time.Date(checkYear, time.Month(m), d, 0, 0, 0, 0, time.UTC).Day() != d {
		return "", fmt.Errorf("%q is not a date: no day %d in month %d", v, d, m)
	}
	if zh {
		return zhDate(y, m, d), nil
	}
	return enDate(y, m, d), nil
}

var clockRE = regexp.MustCompile(`^(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?$`)

func clock(v string, zh bool) (string, error) {
	g := clockRE.FindStringSubmatch(v)
	if g == nil {
		return "", fmt.Errorf("%q is not a time: write 14:05 or 14:05:30 (24-hour clock)", v)
	}
	h, m := atoi(g[1]), atoi(g[2])
	sec, hasSec := 0, g[3] != ""
	if hasSec {
		sec = atoi(g[3])
	}
	if h > 23 || m > 59 || sec > 59 {
		return "", fmt.Errorf("%q is not a time of day: hours 0-23, minutes and seconds 0-59", v)
	}
	if zh {
		return zhClock(h, m, sec, hasSec), nil
	}
	return enClock(h, m, sec, hasSec), nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
