package templates

import (
	"strings"
	"testing"
)

func TestReviewChecks(t *testing.T) {
	r := DefaultRules()
	cases := []struct {
		t     Template
		check string
	}{
		{Template{ID: "a", Text: "{1}{2}"}, "only_placeholders"},
		{Template{ID: "a", Text: "Hi {2}"}, "placeholders"},
		{Template{ID: "a", Kind: KindCode, Text: "Your number is {1}", Language: "en", Params: []Param{{As: "digits"}}}, "verification_word"},
		{Template{ID: "a", Kind: KindCode, Text: "您的验证码是{1}", Language: "zh"}, "code_placeholder"},
		{Template{ID: "a", Text: "Visit our casino tonight, {1}"}, "banned_word"},
		{Template{ID: "a", Text: "您好{1}，无抵押贷款秒批"}, "banned_word"},
		{Template{ID: "a", Text: strings.Repeat("好", 501)}, "length"},
		{Template{ID: "a", Text: "Hi \xff"}, "utf8"},
		{Template{ID: "a", Text: "Hi", KeyActions: map[string]KeyAction{"x": KeyOptOut}}, "key_actions"},
	}
	for _, c := range cases {
		fs := Check(c.t, r)
		found := false
		for _, f := range fs {
			found = found || (f.Check == c.check && f.Severity == SeverityError)
		}
		if !found {
			t.Errorf("%q: findings %+v, want a %s error", c.t.Text, fs, c.check)
		}
	}
	ok := Template{ID: "ok", Kind: KindCode, Text: "您的验证码是{1}，五分钟内有效。", Language: "zh-CN", Params: []Param{{As: "digits"}}}
	if fs := Check(ok, r); HasErrors(fs) {
		t.Errorf("good code template: %+v", fs)
	}
	// "bet" is banned as a word, not inside "better".
	if f := NewWordList([]string{"bet"}).Find("a better day"); f != nil {
		t.Errorf("word boundary: %v", f)
	}
}

func TestParamConstraints(t *testing.T) {
	tm := Template{ID: "t", Text: "Code {1}, see {2}", Params: []Param{{As: "digits", MaxLen: 6}, {AllowURLs: true}}}
	if err := tm.CheckParams([]string{"12345", "https://example.com/x"}); err != nil {
		t.Fatal(err)
	}
	if err := tm.CheckParams([]string{"12a45", "x"}); err == nil || !strings.Contains(err.Error(), "digits only") {
		t.Fatalf("digits: %v", err)
	}
	if err := tm.CheckParams([]string{"1234567", "x"}); err == nil || !strings.Contains(err.Error(), "at most 6") {
		t.Fatalf("max len: %v", err)
	}
	plain := Template{ID: "p", Text: "Hi {1}"}
	if err := plain.CheckParams([]string{"go to evil.com"}); err == nil || !strings.Contains(err.Error(), "web address") {
		t.Fatalf("url: %v", err)
	}
}
