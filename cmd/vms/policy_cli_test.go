package main

import (
	"strings"
	"testing"

	"github.com/vms-project/vms/internal/redistest"
)

func TestPolicyCommands(t *testing.T) {
	redis := redistest.Start(t)
	t.Setenv("REDIS_URL", redis.URL)
	cfg := defaultsConfig(t) // policy_helpers_test.go
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"template", "add", "--id", "otp", "--kind", "code", "--lang", "zh", "--text", "您的验证码是{1}", "--param", "as=digits,max_len=6"}, 0, "status     pending"},
		{[]string{"template", "add", "--id", "bad", "--text", "{1}"}, 0, "only_placeholders"},
		{[]string{"template", "approve", "bad", "--by", "rev"}, 2, "automated review found problems"},
		{[]string{"template", "approve", "otp", "--by", "rev"}, 0, "status     approved"},
		{[]string{"template", "list"}, 0, "otp"},
		{[]string{"template", "reject", "delivery", "--by", "rev"}, 2, "reason"},
		{[]string{"template", "show", "nope"}, 3, "not found"},
		{[]string{"consent", "add", "--app", "shop", "--to", "+8613800138000", "--source", "web form"}, 0, "+86*******8000"},
		{[]string{"consent", "check", "--app", "shop", "--to", "+8613800138000"}, 0, "web form"},
		{[]string{"consent", "remove", "--app", "shop", "--to", "+8613800138000"}, 0, "removed"},
		{[]string{"consent", "check", "--app", "shop", "--to", "+8613800138000"}, 3, "consent: none"},
		{[]string{"suppress", "add", "--to", "+8613800138000", "--reason", "complaint"}, 0, "suppressed +86*******8000"},
		{[]string{"send", "code", "--to", "+8613800138000", "--code", "1234"}, 2, "blocked"},
		{[]string{"suppress", "list"}, 0, "complaint"},
		{[]string{"suppress", "remove", "--to", "+8613800138000"}, 0, "removed"},
		{[]string{"audit", "verify"}, 0, "audit log intact"},
		{[]string{"audit", "export"}, 0, `"type":"suppression.removed"`},
	}
	for _, s := range steps {
		out, errOut, code := vms(t, append(s.args, "-c", cfg)...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Fatalf("vms %v: exit %d (want %d), out %q err %q; want %q", s.args, code, s.code, out, errOut, s.want)
		}
		if strings.Contains(out+errOut, "13800138000") {
			t.Fatalf("vms %v printed a full number: %q %q", s.args, out, errOut)
		}
	}
}
