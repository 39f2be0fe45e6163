package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vms-project/vms/internal/redistest"
)

// Every command that builds the policy engine refuses to start without an
// HMAC secret, naming policy.hmac_secret_env; allow_generated_key opts in.
func TestNoSecretFailsAtStartup(t *testing.T) {
	redis := redistest.Start(t)
	t.Setenv("REDIS_URL", redis.URL)
	dir := t.TempDir()
	write := func(name, policy string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(policy+`
trunks:
  - {name: carrier-sim, uri: "sip:127.0.0.1:5080", transport: udp, codecs: [PCMU]}
api:
  listen: 127.0.0.1:0
  apps: [{id: shop, key: 0123456789abcdef0123456789abcdef, rate_limit: 10}]
`), 0o600)
		return p
	}
	none := write("none.yaml", "")
	for _, args := range [][]string{
		{"worker", "-c", none},
		{"api", "-c", none},
		{"send", "code", "--to", "+8613800138000", "--code", "1234", "-c", none},
		{"suppress", "list", "-c", none},
		{"audit", "verify", "-c", none},
		{"template", "list"}, // the embedded defaults name no secret either
	} {
		_, errOut, code := vms(t, args...)
		if code != 2 || !strings.Contains(errOut, "policy.hmac_secret_env") || !strings.Contains(errOut, "policy.allow_generated_key") {
			t.Errorf("vms %v: exit %d, err %q; want exit 2 naming policy.hmac_secret_env", args, code, errOut)
		}
	}
	if n, _ := redis.Client(t).DBSize(context.Background()).Result(); n != 0 {
		t.Fatalf("refused commands wrote %d keys", n)
	}
	gen := write("gen.yaml", "policy: {allow_generated_key: true}")
	if out, errOut, code := vms(t, "suppress", "list", "-c", gen); code != 0 {
		t.Fatalf("allow_generated_key: exit %d, %q %q", code, out, errOut)
	}
}

func TestAuditCheckpointCommands(t *testing.T) {
	redis := redistest.Start(t)
	t.Setenv("REDIS_URL", redis.URL)
	cfg := defaultsConfig(t) // policy_helpers_test.go
	cp := filepath.Join(t.TempDir(), "checkpoint.json")
	rdb := redis.Client(t)
	ctx := context.Background()
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"suppress", "add", "--to", "+8613800138000", "--reason", "complaint"}, 0, "suppressed"},
		{[]string{"audit", "checkpoint", "--out", cp}, 0, "keep it outside Redis"},
		{[]string{"suppress", "add", "--to", "+8613800138001", "--reason", "complaint"}, 0, "suppressed"},
		{[]string{"audit", "verify", "--checkpoint", cp}, 0, "found in the log"},
		{[]string{"audit", "checkpoint"}, 0, `"signature":"`},
		{[]string{"audit", "export", "--checkpoint", cp}, 2, "usage"},
	}
	run := func(args []string, code int, want string) {
		t.Helper()
		out, errOut, got := vms(t, append(args, "-c", cfg)...)
		if got != code || !strings.Contains(out+errOut, want) {
			t.Fatalf("vms %v: exit %d (want %d), out %q err %q; want %q", args, got, code, out, errOut, want)
		}
	}
	for _, s := range steps {
		run(s.args, s.code, s.want)
	}
	body, _ := os.ReadFile(cp)
	for _, k := range []string{`"seq":`, `"hash":"`, `"time":"`, `"signature":"`} {
		if !strings.Contains(string(body), k) {
			t.Fatalf("checkpoint %s has no %s", body, k)
		}
	}
	// Both keys deleted: verify alone cannot tell, the checkpoint can.
	rdb.Del(ctx, "vms:audit", "vms:audit:head")
	run([]string{"audit", "verify"}, 0, "intact")
	run([]string{"audit", "verify", "--checkpoint", cp}, 1, "the log was deleted")
	// A head written by hand, without the key.
	run([]string{"suppress", "add", "--to", "+8613800138002", "--reason", "x"}, 0, "suppressed")
	rdb.Set(ctx, "vms:audit:head", `{"seq":1,"hash":"`+strings.Repeat("0", 64)+`","time":"2026-01-01T00:00:00Z","signature":"`+strings.Repeat("0", 64)+`"}`, 0)
	run([]string{"audit", "verify"}, 1, "not signed with this deployment's key")
	// The opt-out itself is kept (never lose a suppression); its audit
	// entry is refused, and the command fails saying so.
	run([]string{"suppress", "add", "--to", "+8613800138003", "--reason", "x"}, 2, "nothing was appended")
	run([]string{"suppress", "list"}, 0, "+86*******8003")
	os.WriteFile(cp, []byte("{}"), 0o600)
	run([]string{"audit", "verify", "--checkpoint", cp}, 2, "not a signed audit head")
}
