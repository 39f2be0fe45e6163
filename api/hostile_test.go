package api_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/api/vmsclient"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/internal/testutil"
	"github.com/vms-project/vms/queue"
)

// TestCallbackURLRefusedAtEnqueue: a send may not point its callbacks
// inside the network (without api.callbacks.allow_private_hosts) nor off
// its app's callback_hosts; the answer is 400 invalid_callback_url, saying
// why, and nothing is enqueued.
func TestCallbackURLRefusedAtEnqueue(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.API.Apps[1].CallbackHosts = []string{"bank.example.com", "*.hooks.bank.example.com"}
	})
	send := func(app, key, url string) answer {
		t.Helper()
		return e.do(t, req{path: "/v1/calls/code", app: app, key: key,
			body: fmt.Sprintf(`{"to":"+8613800138000","code":"1234","callback_url":%q}`, url)})
	}
	for _, c := range []struct {
		url, why string
	}{
		{"http://127.0.0.1:8080/cb", "not a public address"},
		{"http://127.0.0.1:6379/", "allow_private_hosts"},
		{"http://10.0.0.5/cb", "not a public address"},
		{"http://100.64.1.1/cb", "not a public address"},
		{"http://169.254.169.254/latest/meta-data/", "not a public address"},
		{"http://[::1]:8080/cb", "not a public address"},
		{"http://[fd00::1]/cb", "not a public address"},
		{"http://[::ffff:10.0.0.1]/cb", "not a public address"},
		{"http://0.0.0.0:8080/", "not a public address"},
		{"http://localhost:8080/cb", "loopback"},
		{"https://user:pw@shop.example.com/cb", "credentials"},
		{"ftp://shop.example.com/cb", "scheme"},
		{"gopher://shop.example.com/", "scheme"},
	} {
		a := send("shop", shopKey, c.url)
		if a.status != 400 || a.err.Code != api.CodeInvalidCallbackURL || !strings.Contains(a.err.Message, c.why) {
			t.Errorf("%s: %d %q %q, want 400 invalid_callback_url saying %q", c.url, a.status, a.err.Code, a.err.Message, c.why)
		}
	}
	// bank has a host list: only its hosts, whatever their address.
	for _, url := range []string{"https://shop.example.com/cb", "https://hooks.bank.example.com/cb", "https://bank.example.com.evil.example/cb"} {
		if a := send("bank", bankKey, url); a.status != 400 || a.err.Code != api.CodeInvalidCallbackURL || !strings.Contains(a.err.Message, "callback_hosts") {
			t.Errorf("bank %s: %d %q %q, want 400 invalid_callback_url naming callback_hosts", url, a.status, a.err.Code, a.err.Message)
		}
	}
	if n, _ := e.rdb.Keys(context.Background(), "vms:msg:*").Result(); len(n) != 0 {
		t.Errorf("refused sends left records: %v", n)
	}
	for app, url := range map[string]string{"shop": "https://shop.example.com/vms/status", "bank": "https://a.hooks.bank.example.com/cb"} {
		key := shopKey
		if app == "bank" {
			key = bankKey
		}
		if a := send(app, key, url); a.status != 201 || a.rec.CallbackURL != url {
			t.Errorf("%s %s: %d %s, want 201", app, url, a.status, a.raw)
		}
	}
	// The TTS endpoint checks the same way.
	if a := e.do(t, req{path: "/v1/calls/tts", body: `{"to":"+8613800138000","template_id":"delivery","params":["a","b","c"],"callback_url":"http://192.168.1.1/"}`}); a.status != 400 || a.err.Code != api.CodeInvalidCallbackURL {
		t.Errorf("tts: %d %s", a.status, a.raw)
	}
}

// TestCallbackURLAllowedWithOptIn: with allow_private_hosts the operator's
// internal receivers are accepted.
func TestCallbackURLAllowedWithOptIn(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.API.Callbacks.AllowPrivateHosts = true })
	for i, url := range []string{"http://127.0.0.1:8080/cb", "http://localhost:9000/cb", "http://10.0.0.5/cb"} {
		a := e.do(t, req{path: "/v1/calls/code", body: fmt.Sprintf(`{"to":"+8613800138000","code":"123%d","callback_url":%q}`, i, url)})
		if a.status != 201 || a.rec.CallbackURL != url {
			t.Errorf("%s: %d %s, want 201", url, a.status, a.raw)
		}
	}
	// Credentials and other schemes stay refused.
	if a := e.do(t, req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","callback_url":"http://u:p@127.0.0.1/"}`}); a.status != 400 || a.err.Code != api.CodeInvalidCallbackURL {
		t.Errorf("credentials with the opt-in: %d %s", a.status, a.raw)
	}
}

// TestServeHTTPS: with api.tls_cert and api.tls_key the API speaks HTTPS
// only, TLS 1.2 or later.
func TestServeHTTPS(t *testing.T) {
	certFile, keyFile, pool := testutil.SelfSignedCert(t)
	rs := redistest.Start(t)
	cfg := config.Defaults()
	cfg.Redis.URL = rs.URL
	cfg.Policy.DisableLimits()
	cfg.API.TLSCert, cfg.API.TLSKey = certFile, keyFile
	cfg.Policy.HMACSecret = "0123456789abcdef0123"
	cfg.API.Apps = []config.App{{ID: "shop", Key: shopKey, RateLimit: 1000, Templates: []string{"*"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := rs.Client(t)
	q := queue.NewClient(rdb, queue.Options{Templates: cfg.TemplateRegistry(), DefaultLanguage: "en", Languages: map[string]bool{"en": true}})
	t.Cleanup(func() { _ = q.Close() })
	srv, err := api.New(cfg, rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !srv.TLS() {
		t.Fatal("TLS() is false with tls_cert and tls_key set")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := ln.Addr().String()

	tlsClient := func(c *tls.Config) *http.Client {
		c.RootCAs = pool
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
	}
	hc := tlsClient(&tls.Config{})
	defer hc.CloseIdleConnections()
	rec, err := vmsclient.New("https://"+addr, "shop", []byte(shopKey), hc).
		SendCode(ctx, api.CodeCall{To: "+8613800138000", Code: "4821", MessageID: "tls-1"})
	if err != nil || rec.ID != "tls-1" {
		t.Fatalf("signed send over HTTPS: %+v %v", rec, err)
	}
	// The same client with the wrong key is refused by the API, not by TLS.
	_, err = vmsclient.New("https://"+addr, "shop", []byte(bankKey), hc).Get(ctx, "tls-1")
	var apiErr *vmsclient.Error
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 401 {
		t.Fatalf("wrong key over HTTPS: %v", err)
	}

	// Plain HTTP gets no API answer.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), `"status"`) {
			t.Fatalf("plain HTTP to the HTTPS port: %d %s", resp.StatusCode, b)
		}
		t.Logf("plain HTTP: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	} else {
		t.Logf("plain HTTP: %v", err)
	}
	// A client that offers at most TLS 1.1 cannot connect.
	old := tlsClient(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	defer old.CloseIdleConnections()
	if resp, err := old.Get("https://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a TLS 1.1 client got HTTP %d", resp.StatusCode)
	} else {
		t.Logf("TLS 1.1 client refused: %v", err)
	}
	// TLS 1.2 exactly is enough.
	tls12 := tlsClient(&tls.Config{MaxVersion: tls.VersionTLS12})
	defer tls12.CloseIdleConnections()
	resp, err = tls12.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 client: %d %+v", resp.StatusCode, resp.TLS)
	}
}
