package templates

import (
	"strings"
	"testing"
)

func TestPlaceholders(t *testing.T) {
	for text, want := range map[string]int{"no params": 0, "{1} and {2}": 2, "{1} {1} {2}": 2} {
		if n, err := Placeholders(text); err != nil || n != want {
			t.Errorf("Placeholders(%q) = %d, %v; want %d", text, n, err, want)
		}
	}
	for _, text := range []string{"{2} only", "{0}", "{1} {3}"} {
		if _, err := Placeholders(text); err == nil {
			t.Errorf("Placeholders(%q) accepted", text)
		}
	}
}

func TestFill(t *testing.T) {
	tm := Template{ID: "t", Text: "Hi {1}, code {2}. Bye {1}."}
	got, err := tm.Fill([]string{"Ann", "42"})
	if err != nil || got != "Hi Ann, code 42. Bye Ann." {
		t.Fatalf("Fill = %q, %v", got, err)
	}
	if _, err := tm.Fill([]string{"Ann"}); err == nil || !strings.Contains(err.Error(), "2 placeholder(s) but 1") {
		t.Fatalf("short params: %v", err)
	}
	if _, err := tm.Fill([]string{"Ann", strings.Repeat("好", 33)}); err == nil || !strings.Contains(err.Error(), "33 characters") {
		t.Fatalf("long param: %v", err)
	}
	if _, err := tm.Fill([]string{"Ann", strings.Repeat("好", 32)}); err != nil {
		t.Fatalf("32 characters must pass: %v", err)
	}
}
