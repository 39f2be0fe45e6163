package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/testutil"
)

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("VMS_CARRIER_A_PASSWORD", "s3cret")
	t.Setenv("VMS_HMAC_SECRET", "0123456789abcdef0123")
	t.Setenv("VMS_TTS_TOKEN", "Bearer test-token")
	t.Setenv("REDIS_URL", "")
	c, err := Load("../configs/vms.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Trunks[0].Password != "s3cret" || c.Worker.Concurrency != 50 || c.Call.RingTimeout.D() != 45*time.Second {
		t.Fatalf("example config read wrong: %+v", c)
	}
	if len(c.Templates) != 5 || c.Policy.HMACSecret == "" || c.TemplateRegistry()["payment_due"].Voice != "cmn" {
		t.Fatalf("templates = %+v", c.Templates)
	}
	// audio: the HTTP engine's credential comes from the environment; the mixed
	// template's text is derived from its segments.
	if c.Audio.Engines[0].Headers["Authorization"] != "Bearer test-token" || c.EngineFor("zh", "") != "cloud" ||
		c.TemplateRegistry()["order_ready"].Text != "Hello from Example Shop. Your order {1} of {2} is ready for pickup on {3} after {4}. Goodbye." {
		t.Fatalf("audio = %+v, order_ready = %+v", c.Audio, c.TemplateRegistry()["order_ready"])
	}
}

func TestComposeConfigLoads(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("VMS_HMAC_SECRET", "0123456789abcdef0123")
	if _, err := Load("../configs/compose.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://example:6379/3")
	// The defaults name no secret: they are valid once one is given.
	c, err := LoadWith("", func(c *Config) { c.Policy.HMACSecret = "0123456789abcdef" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://example:6379/3" {
		t.Fatalf("REDIS_URL not applied: %s", c.Redis.URL)
	}
	if err := Defaults().Validate(); err == nil || !strings.Contains(err.Error(), NoSecretProblem) {
		t.Fatalf("defaults without a secret: %v", err)
	}
}

func TestHMACSecretIsRequired(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("VMS_TEST_HMAC", "")
	os.Unsetenv("VMS_TEST_HMAC")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, policy, env, want string
	}{
		{"none", "{}", "", "policy.hmac_secret_env: no HMAC secret is configured"},
		{"generated allowed", "{allow_generated_key: true}", "", ""},
		{"env", "{hmac_secret_env: VMS_TEST_HMAC}", "0123456789abcdef0123", ""},
		{"env unset", "{hmac_secret_env: VMS_TEST_HMAC}", "-", "environment variable VMS_TEST_HMAC is not set"},
		// A missing variable never falls back to a generated key: that
		// process would hash numbers differently from the others.
		{"env unset, generated allowed", "{hmac_secret_env: VMS_TEST_HMAC, allow_generated_key: true}", "-", "environment variable VMS_TEST_HMAC is not set"},
		{"short", "{hmac_secret: abc}", "", "policy.hmac_secret is 3 bytes"},
		{"literal", "{hmac_secret: 0123456789abcdef}", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env == "-" {
				os.Unsetenv("VMS_TEST_HMAC")
			} else if tc.env != "" {
				t.Setenv("VMS_TEST_HMAC", tc.env)
			}
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			os.WriteFile(p, []byte("policy: "+tc.policy+"\ntrunks: [{name: t, uri: \"sip:127.0.0.1:5080\", transport: udp, codecs: [PCMU]}]\n"), 0o600)
			_, err := Load(p)
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("VMS_MISSING_PASSWORD", "")
	os.Unsetenv("VMS_MISSING_PASSWORD")
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := `
redis:
  url: "http://nope"
  durability: sometimes
api:
  apps:
    - id: default
      key: 0123456789abcdef0123
worker:
  concurrency: 0
  poll_interval: 1ms
rtp:
  accept_from: anywhere
sip:
  listen: "udp://somehost:5060"
trunks:
  - name: a
    uri: "not a uri"
    transport: sctp
    password_env: VMS_MISSING_PASSWORD
    codecs: [G729]
  - name: a
    uri: sip:b.example.com
    transport: udp
    codecs: [PCMU]
templates:
  - id: t1
    text: "Hello {2}"
    status: live
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{
		"redis.url", "worker.concurrency 0", "worker.poll_interval", "sip.listen",
		"trunks[0].uri", "trunks[0].transport \"sctp\"", "VMS_MISSING_PASSWORD", "trunks[0].codecs: \"G729\"",
		"trunks[1].name \"a\" is used twice", "placeholder {1} is missing", "templates[0].status",
		`rtp.accept_from "anywhere": use answer`, `redis.durability "sometimes"`,
		`api.apps[0].id "default" is reserved`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestUnknownKeysAreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(path, []byte("worker:\n  concurency: 5\ntts:\n  engin: x\n"), 0o600)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "concurency") || !strings.Contains(err.Error(), "engin") {
		t.Fatalf("err = %v, want both unknown keys named", err)
	}
}

func TestBadDuration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.yaml")
	os.WriteFile(path, []byte("call:\n  ring_timeout: soon\n"), 0o600)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), `"soon" is not a duration`) {
		t.Fatalf("err = %v", err)
	}
}

func TestAPITLSAndCallbackURLChecks(t *testing.T) {
	cert, key, _ := testutil.SelfSignedCert(t)
	valid := func(edit func(c *Config)) error {
		c := Defaults()
		c.Policy.HMACSecret = "0123456789abcdef0123"
		c.API.Apps = []App{{ID: "shop", Key: "shop-key-0123456789abcdef", RateLimit: 10, Templates: []string{"*"}}}
		edit(c)
		return c.Validate()
	}
	cases := []struct {
		name string
		edit func(c *Config)
		want string // "" accepted, else part of the error
	}{
		{"tls both", func(c *Config) { c.API.TLSCert, c.API.TLSKey = cert, key }, ""},
		{"tls cert only", func(c *Config) { c.API.TLSCert = cert }, "set both"},
		{"tls key only", func(c *Config) { c.API.TLSKey = key }, "set both"},
		{"tls unreadable", func(c *Config) { c.API.TLSCert, c.API.TLSKey = cert, filepath.Join(t.TempDir(), "none.pem") }, "api.tls_cert"},
		{"tls swapped", func(c *Config) { c.API.TLSCert, c.API.TLSKey = key, cert }, "api.tls_cert"},
		{"public callback", func(c *Config) { c.API.Apps[0].CallbackURL = "https://shop.example.com/cb" }, ""},
		{"loopback callback", func(c *Config) { c.API.Apps[0].CallbackURL = "http://127.0.0.1:9000/cb" }, "allow_private_hosts"},
		{"metadata callback", func(c *Config) { c.API.Apps[0].CallbackURL = "http://169.254.169.254/latest" }, "not allowed"},
		{"loopback callback, opted in", func(c *Config) {
			c.API.Apps[0].CallbackURL, c.API.Callbacks.AllowPrivateHosts = "http://127.0.0.1:9000/cb", true
		}, ""},
		{"callback with credentials", func(c *Config) { c.API.Apps[0].CallbackURL = "https://u:secretpw@shop.example.com/cb" }, "credentials"},
		{"callback on the list", func(c *Config) {
			c.API.Apps[0].CallbackURL, c.API.Apps[0].CallbackHosts = "https://a.hooks.example.com/cb", []string{"*.hooks.example.com"}
		}, ""},
		{"callback off the list", func(c *Config) {
			c.API.Apps[0].CallbackURL, c.API.Apps[0].CallbackHosts = "https://shop.example.com/cb", []string{"*.hooks.example.com"}
		}, "callback_hosts"},
		{"bad host pattern", func(c *Config) { c.API.Apps[0].CallbackHosts = []string{"https://x.example.com"} }, "api.apps[0].callback_hosts"},
	}
	for _, c := range cases {
		err := valid(c.edit)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: the error repeats the URL's password: %v", c.name, err)
		}
	}
}

func TestNonNumbersAndSecondDocumentsAreRefused(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	dir := t.TempDir()
	trunk := `trunks: [{name: t, uri: "sip:127.0.0.1:5080", transport: udp, codecs: [PCMU], cps: .nan}]` + "\n"
	for name, tc := range map[string]struct{ body, want string }{
		"nan":        {"policy: {allow_generated_key: true}\n" + trunk, "trunks[0].cps: NaN is not a number"},
		"inf":        {"policy: {allow_generated_key: true}\napi: {billing: {reconcile: {tolerance_permille: .inf}}}\n" + strings.Replace(trunk, ".nan", "1", 1), "api.billing.reconcile.tolerance_permille: +Inf is not a number"},
		"second doc": {"policy: {allow_generated_key: true}\n" + strings.Replace(trunk, ".nan", "1", 1) + "---\nworker: {concurrency: 0}\n", "line 3: a second YAML document"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(p, []byte(tc.body), 0o600)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
