package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/redistest"
)

// vms runs the CLI in-process and returns its output and exit code.
func vms(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func TestSendAndStatus(t *testing.T) {
	redis := redistest.Start(t)
	t.Setenv("REDIS_URL", redis.URL)
	cfg := noLimitsConfig(t) // policy_helpers_test.go

	out, errOut, code := vms(t, "send", "code", "-c", cfg, "--to", "+8613800138000", "--code", "123456", "--id", "cli-1")
	if code != 0 || strings.TrimSpace(out) != "cli-1" {
		t.Fatalf("send code: exit %d, out %q, err %q", code, out, errOut)
	}
	out, errOut, code = vms(t, "send", "code", "-c", cfg, "--to", "+8613800138000", "--code", "123456", "--id", "cli-1", "--json")
	if code != 0 || !strings.Contains(errOut, "already exists") || !strings.Contains(out, `"duplicate": true`) {
		t.Fatalf("second send: exit %d, out %q, err %q", code, out, errOut)
	}
	out, _, code = vms(t, "status", "cli-1", "-c", cfg)
	if code != 0 || !strings.Contains(out, "status     queued") || strings.Contains(out, "8613800138000") {
		t.Fatalf("status: exit %d, out %q (the number must be masked)", code, out)
	}
	start := time.Now()
	_, errOut, code = vms(t, "status", "cli-1", "--wait", "300ms", "-c", cfg)
	if code != exitTimeout || time.Since(start) < 300*time.Millisecond || !strings.Contains(errOut, "still queued") {
		t.Fatalf("status --wait on a queued message: exit %d, err %q", code, errOut)
	}
	_, errOut, code = vms(t, "status", "no-such-id", "--wait", "1s", "-c", cfg)
	if code != exitNotFound || !strings.Contains(errOut, "not found") {
		t.Fatalf("status of unknown id: exit %d, err %q", code, errOut)
	}
	out, errOut, code = vms(t, "send", "tts", "-c", cfg, "--to", "+8613800138000", "--template", "delivery",
		"--param", "Ann", "--param", "P-1", "--param", "2 and 4", "--play-times", "1")
	if code != 0 || len(strings.TrimSpace(out)) != 32 {
		t.Fatalf("send tts: exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	redis := redistest.Start(t)
	t.Setenv("REDIS_URL", redis.URL)
	cfg := defaultsConfig(t) // policy_helpers_test.go
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "code", "--to", "13800138000", "--code", "1234"}, "E.164"},
		{[]string{"send", "code", "--to", "+8613800138000", "--code", "12"}, "4 to 10 digits"},
		{[]string{"send", "code", "--to", "+8613800138000", "--code", "1234", "--play-times", "5"}, "1 to 3"},
		{[]string{"send", "tts", "--to", "+8613800138000", "--template", "outage", "--param", "x"}, "only approved templates"},
		{[]string{"send", "tts", "--to", "+8613800138000", "--template", "delivery", "--param", "x"}, "3 placeholder(s) but 1"},
		{[]string{"send", "tts", "--to", "+8613800138000", "--template", "nope"}, "does not exist"},
		{[]string{"send", "sms"}, "usage"},
	} {
		_, errOut, code := vms(t, append(tc.args, "-c", cfg)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, err %q; want non-zero and %q", tc.args, code, errOut, tc.want)
		}
	}
	all, _ := redis.Client(t).Keys(context.Background(), "*").Result()
	var keys []string
	for _, k := range all {
		// The template registry seeded from the config, the audit log and
		// the generated hashing key are the deployment's, not the sends'.
		if !strings.HasPrefix(k, "vms:tpl") && !strings.HasPrefix(k, "vms:audit") && !strings.HasPrefix(k, "vms:policy:") {
			keys = append(keys, k)
		}
	}
	if len(keys) != 0 {
		t.Fatalf("refused sends left keys: %v", keys)
	}
}

func TestBadConfigFailsAtStartup(t *testing.T) {
	_, errOut, code := vms(t, "send", "code", "-c", "/nonexistent.yaml", "--to", "+8613800138000", "--code", "1234")
	if code == 0 || !strings.Contains(errOut, "nonexistent.yaml") {
		t.Fatalf("exit %d, err %q", code, errOut)
	}
}
