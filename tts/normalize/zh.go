package normalize

import (
	"fmt"
	"strings"
)

var (
	zhDigits     = []string{"零", "一", "二", "三", "四", "五", "六", "七", "八", "九"}
	zhDigitsCode = []string{"零", "幺", "二", "三", "四", "五", "六", "七", "八", "九"} // 1 as 幺, as in phone numbers and codes
	zhPosUnits   = []string{"", "十", "百", "千"}
	zhSecUnits   = []string{"", "万", "亿", "万亿"}
)

// zhSection reads 1..9999 with inner zeros as one 零 and no trailing zeros.
func zhSection(n int) string {
	var b strings.Builder
	zero := false
	for pos := 3; pos >= 0; pos-- {
		d := n / pow10(pos) % 10
		if d == 0 {
			if b.Len() > 0 {
				zero = true
			}
			continue
		}
		if zero {
			b.WriteString("零")
			zero = false
		}
		b.WriteString(zhDigits[d] + zhPosUnits[pos])
	}
	return b.String()
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// zhInt reads a non-negative integer below 10^16: 1280 一千二百八十, 10 十, 100000
// 十万, 100000001 一亿零一, 200300 二十万零三百.
func zhInt(n int64) string {
	if n == 0 {
		return "零"
	}
	var secs []int
	for ; n > 0; n /= 10000 {
		secs = append(secs, int(n%10000))
	}
	var b strings.Builder
	pending := false
	for i := len(secs) - 1; i >= 0; i-- {
		sec := secs[i]
		if sec == 0 {
			if b.Len() > 0 {
				pending = true
			}
			continue
		}
		if b.Len() > 0 && (pending || sec < 1000) {
			b.WriteString("零")
		}
		pending = false
		b.WriteString(zhSection(sec) + zhSecUnits[i])
	}
	s := b.String()
	if strings.HasPrefix(s, "一十") {
		s = strings.TrimPrefix(s, "一")
	}
	return s
}

// zhDecimal reads a parsed number: 负 for the sign, the integer, 点 and the fraction
// digits one by one.
func zhDecimal(p parsed) string {
	s := zhInt(p.intVal.Int64())
	if p.frac != "" {
		s += "点"
		for _, r := range p.frac {
			s += zhDigits[r-'0']
		}
	}
	if p.neg {
		s = "负" + s
	}
	return s
}

// zhMoney reads yuan as 元角分 and dollars as 美元 and 美分.
func zhMoney(cur currency, p parsed, cents int) string {
	var s string
	whole := p.intVal.Int64()
	if cur == usd {
		if whole > 0 || cents == 0 {
			s = zhInt(whole) + "美元"
		}
		if cents > 0 {
			s += zhInt(int64(cents)) + "美分"
		}
	} else {
		jiao, fen := cents/10, cents%10
		if whole > 0 || cents == 0 {
			s = zhInt(whole) + "元"
		}
		if jiao > 0 {
			s += zhDigits[jiao] + "角"
		}
		if fen > 0 {
			if jiao == 0 && whole > 0 {
				s += "零"
			}
			s += zhDigits[fen] + "分"
		}
	}
	if p.neg {
		s = "负" + s
	}
	return s
}

// zhDate reads 二零二六年十二月一日 (the year digit by digit, as it is said).
func zhDate(y, m, d int) string {
	var b strings.Builder
	if y > 0 {
		for _, r := range fmt.Sprint(y) {
			b.WriteString(zhDigits[r-'0'])
		}
		b.WriteString("年")
	}
	b.WriteString(zhInt(int64(m)) + "月" + zhInt(int64(d)) + "日")
	return b.String()
}

// zhClock reads 十四点零五分, 两点, 九点三十分二十秒.
func zhClock(h, m, sec int, hasSec bool) string {
	s := zhInt(int64(h))
	if h == 2 {
		s = "两"
	}
	s += "点"
	if m > 0 || (hasSec && sec > 0) {
		if m < 10 {
			s += "零"
		}
		s += zhInt(int64(m)) + "分"
	}
	if hasSec && sec > 0 {
		s += zhInt(int64(sec)) + "秒"
	}
	return s
}
