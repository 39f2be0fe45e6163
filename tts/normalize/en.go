package normalize

import "strings"

var (
	enOnes = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
		"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	enTens   = []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
	enScales = []string{"", "thousand", "million", "billion", "trillion", "quadrillion"}
	enMonths = []string{"", "January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
)

// enBelow1000 reads 1..999: "two hundred eighty", "forty-two".
func enBelow1000(n int) string {
	var parts []string
	if n >= 100 {
		parts = append(parts, enOnes[n/100], "hundred")
		n %= 100
	}
	switch {
	case n == 0:
	case n < 20:
		parts = append(parts, enOnes[n])
	case n%10 == 0:
		parts = append(parts, enTens[n/10])
	default:
		parts = append(parts, enTens[n/10]+"-"+enOnes[n%10])
	}
	return strings.Join(parts, " ")
}

// enInt reads a non-negative integer below 10^18.
func enInt(n int64) string {
	if n == 0 {
		return "zero"
	}
	var groups []string
	for i := 0; n > 0; i, n = i+1, n/1000 {
		if g := int(n % 1000); g > 0 {
			w := enBelow1000(g)
			if enScales[i] != "" {
				w += " " + enScales[i]
			}
			groups = append([]string{w}, groups...)
		}
	}
	return strings.Join(groups, " ")
}

// enDecimal reads "minus", the integer, "point" and the fraction digits one by one.
func enDecimal(p parsed) string {
	s := enInt(p.intVal.Int64())
	if p.frac != "" {
		s += " point"
		for _, r := range p.frac {
			s += " " + enOnes[r-'0']
		}
	}
	if p.neg {
		s = "minus " + s
	}
	return s
}

// enMoney reads "one thousand two hundred eighty dollars and fifty cents".
func enMoney(cur currency, p parsed, cents int) string {
	major, minor := "dollar", "cent"
	if cur == cny {
		major, minor = "yuan", "fen"
	}
	plural := func(n int64, w string) string {
		if n == 1 || w == "yuan" || w == "fen" {
			return enInt(n) + " " + w
		}
		return enInt(n) + " " + w + "s"
	}
	whole := p.intVal.Int64()
	var parts []string
	if whole > 0 || cents == 0 {
		parts = append(parts, plural(whole, major))
	}
	if cents > 0 {
		parts = append(parts, plural(int64(cents), minor))
	}
	s := strings.Join(parts, " and ")
	if p.neg {
		s = "minus " + s
	}
	return s
}

// enOrdinal reads 1..31 as "first" .. "thirty-first".
func enOrdinal(n int) string {
	w := enBelow1000(n)
	i := strings.LastIndexAny(w, " -") + 1
	last := w[i:]
	irregular := map[string]string{"one": "first", "two": "second", "three": "third", "five": "fifth",
		"eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
	switch {
	case irregular[last] != "":
		last = irregular[last]
	case strings.HasSuffix(last, "y"):
		last = strings.TrimSuffix(last, "y") + "ieth"
	default:
		last += "th"
	}
	return w[:i] + last
}

// enYear reads a year as said: "twenty twenty-six", "two thousand five", "nineteen
// hundred", "nineteen oh five".
func enYear(y int) string {
	switch {
	case y >= 2000 && y < 2010:
		return enInt(int64(y))
	case y < 1100 || y >= 10000:
		return enInt(int64(y))
	case y%100 == 0:
		return enBelow1000(y/100) + " hundred"
	case y%100 < 10:
		return enBelow1000(y/100) + " oh " + enOnes[y%100]
	}
	return enBelow1000(y/100) + " " + enBelow1000(y%100)
}

// enDate reads "December first, twenty twenty-six".
func enDate(y, m, d int) string {
	s := enMonths[m] + " " + enOrdinal(d)
	if y > 0 {
		s += ", " + enYear(y)
	}
	return s
}

// enClock reads the 12-hour clock: "two oh five PM", "nine thirty AM", "twelve PM".
func enClock(h, m, sec int, hasSec bool) string {
	suffix := "AM"
	if h >= 12 {
		suffix = "PM"
	}
	h12 := h % 12
	if h12 == 0 {
		h12 = 12
	}
	s := enOnes[h12]
	switch {
	case m == 0:
	case m < 10:
		s += " oh " + enOnes[m]
	default:
		s += " " + enBelow1000(m)
	}
	s += " " + suffix
	if hasSec && sec > 0 {
		unit := " seconds"
		if sec == 1 {
			unit = " second"
		}
		s += " and " + enBelow1000(sec) + unit
	}
	return s
}
