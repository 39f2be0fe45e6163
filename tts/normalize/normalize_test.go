package normalize

import (
	"strings"
	"testing"
)

type row struct {
	in   string
	as   As
	want string
}

func check(t *testing.T, lang string, rows []row) {
	t.Helper()
	for _, r := range rows {
		got, err := Value(r.in, r.as, lang)
		if err != nil {
			t.Errorf("%s %s %q: %v", lang, r.as, r.in, err)
			continue
		}
		if got != r.want {
			t.Errorf("%s %s %q:\n got %q\nwant %q", lang, r.as, r.in, got, r.want)
		}
	}
}

func TestChinese(t *testing.T) {
	check(t, "zh", []row{
		{"482913", Digits, "四 八 二 九 幺 三"},
		{"138-0013-8000", Digits, "幺 三 八 零 零 幺 三 八 零 零 零"},
		{"+86 10", Digits, "加 八 六 幺 零"},
		{"SF1024", Digits, "S F 幺 零 二 四"},
		{"0", Number, "零"},
		{"7", Number, "七"},
		{"10", Number, "十"},
		{"15", Number, "十五"},
		{"20", Number, "二十"},
		{"101", Number, "一百零一"},
		{"110", Number, "一百一十"},
		{"1010", Number, "一千零一十"},
		{"1280", Number, "一千二百八十"},
		{"1,280", Number, "一千二百八十"},
		{"10000", Number, "一万"},
		{"100000", Number, "十万"},
		{"110000", Number, "十一万"},
		{"200300", Number, "二十万零三百"},
		{"1000001", Number, "一百万零一"},
		{"100000001", Number, "一亿零一"},
		{"120000000", Number, "一亿二千万"},
		{"3.14", Number, "三点一四"},
		{"1280.50", Number, "一千二百八十点五零"},
		{"-3", Number, "负三"},
		{"0.5", Number, "零点五"},
		{"12.5%", Number, "百分之十二点五"},
		{"100%", Number, "百分之一百"},
		{"-2%", Number, "负百分之二"},
		{"¥1,280.50", Money, "一千二百八十元五角"},
		{"￥1280.05", Money, "一千二百八十元零五分"},
		{"1280.55元", Money, "一千二百八十元五角五分"},
		{"100元", Money, "一百元"},
		{"¥0.50", Money, "五角"},
		{"0.05", Money, "五分"},
		{"RMB 20", Money, "二十元"},
		{"$12.30", Money, "十二美元三十美分"},
		{"-¥5", Money, "负五元"},
		{"2026-12-01", Date, "二零二六年十二月一日"},
		{"2026/1/31", Date, "二零二六年一月三十一日"},
		{"2026年12月1日", Date, "二零二六年十二月一日"},
		{"12-25", Date, "十二月二十五日"},
		{"14:05", Time, "十四点零五分"},
		{"14:00", Time, "十四点"},
		{"2:30", Time, "两点三十分"},
		{"09:30:20", Time, "九点三十分二十秒"},
		{"0:00", Time, "零点"},
		{"张三", Text, "张三"},
	})
}

func TestEnglish(t *testing.T) {
	check(t, "en", []row{
		{"482913", Digits, "four eight two nine one three"},
		{"+1 555-0100", Digits, "plus one five five five zero one zero zero"},
		{"A7", Digits, "A seven"},
		{"0", Number, "zero"},
		{"15", Number, "fifteen"},
		{"42", Number, "forty-two"},
		{"100", Number, "one hundred"},
		{"1280", Number, "one thousand two hundred eighty"},
		{"1,000,001", Number, "one million one"},
		{"2,500,000,000", Number, "two billion five hundred million"},
		{"3.14", Number, "three point one four"},
		{"-7.5", Number, "minus seven point five"},
		{"12.5%", Number, "twelve point five percent"},
		{"$1,280.50", Money, "one thousand two hundred eighty dollars and fifty cents"},
		{"$1", Money, "one dollar"},
		{"$0.01", Money, "one cent"},
		{"US$ 20.5", Money, "twenty dollars and fifty cents"},
		{"¥1,280.50", Money, "one thousand two hundred eighty yuan and fifty fen"},
		{"99元", Money, "ninety-nine yuan"},
		{"2026-12-01", Date, "December first, twenty twenty-six"},
		{"2005/3/22", Date, "March twenty-second, two thousand five"},
		{"1999.07.03", Date, "July third, nineteen ninety-nine"},
		{"1905-11-30", Date, "November thirtieth, nineteen oh five"},
		{"1900-01-12", Date, "January twelfth, nineteen hundred"},
		{"02-29", Date, "February twenty-ninth"},
		{"14:05", Time, "two oh five PM"},
		{"9:30", Time, "nine thirty AM"},
		{"00:00", Time, "twelve AM"},
		{"12:00", Time, "twelve PM"},
		{"23:59:01", Time, "eleven fifty-nine PM and one second"},
		{"Alex", Text, "Alex"},
	})
}

func TestRefusals(t *testing.T) {
	for _, r := range []struct {
		in   string
		as   As
		want string
	}{
		{"abc!", Digits, "not a code"},
		{"12a", Number, "not a number"},
		{"1.2.3", Number, "not a number"},
		{"€5", Money, "not an amount"},
		{"$1.234", Money, "at most 2 decimals"},
		{"2026-02-30", Date, "no day 30 in month 2"},
		{"2026-13-01", Date, "not a date"},
		{"tomorrow", Date, "not a date"},
		{"25:00", Time, "hours 0-23"},
		{"noon", Time, "not a time"},
		{"12345678901234567", Number, "not a number"},
	} {
		for _, lang := range []string{"zh", "en"} {
			if _, err := Value(r.in, r.as, lang); err == nil || !strings.Contains(err.Error(), r.want) {
				t.Errorf("%s %s %q: %v, want %q", lang, r.as, r.in, err, r.want)
			}
		}
	}
	if _, err := ParseAs("ordinal"); err == nil {
		t.Error("ParseAs accepted an unknown reading")
	}
	for _, s := range []string{"", "digits", "Number", " money "} {
		if _, err := ParseAs(s); err != nil {
			t.Error(err)
		}
	}
	for lang, want := range map[string]bool{"zh": true, "zh-CN": true, "cmn": true, "cmn-latn-pinyin": true, "en": false, "en-us": false, "": false} {
		if Chinese(lang) != want {
			t.Errorf("Chinese(%q) = %v", lang, !want)
		}
	}
}
