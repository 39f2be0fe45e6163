package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/api/sign"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
)

const (
	shopKey = "shop-key-0123456789abcdef"
	bankKey = "bank-key-0123456789abcdef"
)

type env struct {
	cfg *config.Config
	rdb *redis.Client
	q   *queue.Client
	h   *api.Server
	srv *httptest.Server
}

func newEnv(t testing.TB, edit func(*config.Config)) *env {
	t.Helper()
	rs := redistest.Start(t)
	cfg := config.Defaults()
	cfg.Policy.HMACSecret = "test-secret-0123456789"
	cfg.Redis.URL = rs.URL
	cfg.Policy.DisableLimits() // policy limits have their own tests (policy/)
	cfg.API.Apps = []config.App{
		{ID: "shop", Key: shopKey, RateLimit: 1000, Templates: []string{"delivery"}},
		{ID: "bank", Key: bankKey, RateLimit: 1000, Templates: []string{"*"}},
	}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := rs.Client(t)
	q := queue.NewClient(rdb, queue.Options{Templates: cfg.TemplateRegistry(), DefaultLanguage: "en", Languages: map[string]bool{"en": true, "zh": true}})
	t.Cleanup(func() { _ = q.Close() })
	s, err := api.New(cfg, rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{cfg: cfg, rdb: rdb, q: q, h: s, srv: srv}
}

// req describes one raw request; zero fields take the valid default.
type req struct {
	method, path string
	body         string
	app, key     string
	ts           time.Time
	nonce        string
	signedBody   *string // sign this instead of body
	noAuth       bool
}

type answer struct {
	status int
	err    api.Error
	rec    queue.Record
	raw    []byte
}

func (e *env) do(t *testing.T, r req) answer {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.app == "" {
		r.app, r.key = "shop", shopKey
	}
	if r.ts.IsZero() {
		r.ts = time.Now()
	}
	if r.nonce == "" {
		r.nonce = sign.NewNonce()
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	signed := r.body
	if r.signedBody != nil {
		signed = *r.signedBody
	}
	if !r.noAuth {
		ts := strconv.FormatInt(r.ts.Unix(), 10)
		hr.Header.Set(sign.HeaderAppID, r.app)
		hr.Header.Set(sign.HeaderTimestamp, ts)
		hr.Header.Set(sign.HeaderNonce, r.nonce)
		hr.Header.Set(sign.HeaderSignature, sign.Signature([]byte(r.key), r.method, hr.URL.RequestURI(), ts, r.nonce, []byte(signed)))
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	a.raw, _ = io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(a.raw, &a.err); err != nil || a.err.Code == "" || a.err.Message == "" {
			t.Fatalf("%s %s: error answer %d is not {code, message}: %s", r.method, r.path, resp.StatusCode, a.raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("error answer content type %q", ct)
		}
	} else if strings.HasPrefix(r.path, "/v1/calls") {
		if err := json.Unmarshal(a.raw, &a.rec); err != nil {
			t.Fatalf("answer is not a record: %s", a.raw)
		}
	}
	return a
}

const codeBody = `{"to":"+8613800138000","code":"482913","play_times":1}`

func TestSignatureAcceptedAndRefused(t *testing.T) {
	e := newEnv(t, nil)
	other := `{"to":"+8613800138000","code":"999999","play_times":1}`
	cases := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"valid", req{path: "/v1/calls/code", body: codeBody}, 201, ""},
		{"wrong key", req{path: "/v1/calls/code", body: codeBody, app: "shop", key: bankKey}, 401, api.CodeSignatureInvalid},
		{"unknown app", req{path: "/v1/calls/code", body: codeBody, app: "nobody", key: shopKey}, 401, api.CodeSignatureInvalid},
		{"altered body", req{path: "/v1/calls/code", body: other, signedBody: ptr(codeBody)}, 401, api.CodeSignatureInvalid},
		{"unsigned", req{path: "/v1/calls/code", body: codeBody, noAuth: true}, 401, api.CodeSignatureInvalid},
		{"old timestamp", req{path: "/v1/calls/code", body: codeBody, ts: time.Now().Add(-6 * time.Minute)}, 401, api.CodeTimestampSkew},
		{"future timestamp", req{path: "/v1/calls/code", body: codeBody, ts: time.Now().Add(6 * time.Minute)}, 401, api.CodeTimestampSkew},
		{"timestamp within skew", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1111"}`, ts: time.Now().Add(-4 * time.Minute)}, 201, ""},
		{"short nonce", req{path: "/v1/calls/code", body: codeBody, nonce: "abc"}, 401, api.CodeSignatureInvalid},
	}
	for _, c := range cases {
		a := e.do(t, c.r)
		if a.status != c.status || a.err.Code != c.code {
			t.Errorf("%s: %d %q (%s), want %d %q", c.name, a.status, a.err.Code, a.err.Message, c.status, c.code)
		}
	}

	// The same signed request sent twice: the nonce is refused the second time.
	r := req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"2222"}`, nonce: sign.NewNonce()}
	if a := e.do(t, r); a.status != 201 {
		t.Fatalf("first send: %d %s", a.status, a.raw)
	}
	if a := e.do(t, r); a.status != 401 || a.err.Code != api.CodeNonceReused {
		t.Fatalf("replayed nonce: %d %q, want 401 nonce_reused", a.status, a.err.Code)
	}
	// Another app may use the same nonce: nonces are per app.
	r.app, r.key = "bank", bankKey
	if a := e.do(t, r); a.status != 201 {
		t.Fatalf("same nonce from another app: %d %s", a.status, a.raw)
	}
}

func ptr(s string) *string { return &s }

func TestAnotherAppsMessage(t *testing.T) {
	e := newEnv(t, nil)
	a := e.do(t, req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"4821","message_id":"shop-1"}`})
	if a.status != 201 || a.rec.ID != "shop-1" || a.rec.AppID != "shop" || a.rec.Status != queue.StatusQueued {
		t.Fatalf("send: %d %s", a.status, a.raw)
	}
	for _, r := range []req{
		{method: "GET", path: "/v1/calls/shop-1", app: "bank", key: bankKey},
		{method: "POST", path: "/v1/calls/shop-1/cancel", app: "bank", key: bankKey},
	} {
		if a := e.do(t, r); a.status != 404 || a.err.Code != api.CodeNotFound {
			t.Errorf("bank %s %s: %d %q, want 404 not_found", r.method, r.path, a.status, a.err.Code)
		}
	}
	// Message IDs are scoped per app: the same ID from the other app is a
	// message of its own, and neither app sees the other's.
	b := e.do(t, req{path: "/v1/calls/code", app: "bank", key: bankKey,
		body: `{"to":"+8613900139000","code":"7777","message_id":"shop-1"}`})
	if b.status != 201 || b.rec.ID != "shop-1" || b.rec.AppID != "bank" || b.rec.To != "+8613900139000" {
		t.Fatalf("bank sending the same message id: %d %s, want 201 and a message of its own", b.status, b.raw)
	}
	if a := e.do(t, req{method: "GET", path: "/v1/calls/shop-1", app: "bank", key: bankKey}); a.status != 200 || a.rec.AppID != "bank" || a.rec.Code != "7777" {
		t.Errorf("bank GET: %d %s, want its own message", a.status, a.raw)
	}
	if rec, _ := e.q.Get(context.Background(), queue.Key("shop", "shop-1")); rec.Status != queue.StatusQueued {
		t.Fatalf("shop-1 is %s after another app's cancel", rec.Status)
	}
	if a := e.do(t, req{method: "GET", path: "/v1/calls/shop-1"}); a.status != 200 || a.rec.ID != "shop-1" || a.rec.Code != "4821" || a.rec.AppID != "shop" {
		t.Errorf("owner GET: %d %s", a.status, a.raw)
	}
	tasks, err := asynq.NewInspectorFromRedisClient(e.rdb).ListPendingTasks(queue.QueueCode)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("pending code tasks %d (%v), want one per app", len(tasks), err)
	}
}

func TestIdempotentSend(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"to":"+8613800138000","template_id":"delivery","params":["Ann","A1","9 and 11"],"message_id":"order-7","session_context":"ctx-7"}`
	first := e.do(t, req{path: "/v1/calls/tts", body: body})
	if first.status != 201 || first.rec.SessionContext != "ctx-7" || first.rec.AppID != "shop" {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	second := e.do(t, req{path: "/v1/calls/tts", body: body})
	if second.status != 200 || second.rec.ID != "order-7" || !second.rec.EnqueuedAt.Equal(first.rec.EnqueuedAt) {
		t.Fatalf("second: %d %s, want 200 with the first record", second.status, second.raw)
	}
	ins := asynq.NewInspectorFromRedisClient(e.rdb)
	tasks, err := ins.ListPendingTasks(queue.QueueNotify)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("pending notify tasks = %d (%v), want 1", len(tasks), err)
	}
	// The same ID with different content is a conflict, not a second call.
	changed := strings.Replace(body, `"Ann"`, `"Bob"`, 1)
	if a := e.do(t, req{path: "/v1/calls/tts", body: changed}); a.status != 409 || a.err.Code != api.CodeDuplicateMessage {
		t.Fatalf("same id, other params: %d %s", a.status, a.raw)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, nil)
	if a := e.do(t, req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"4821","message_id":"c-1"}`}); a.status != 201 {
		t.Fatal(a.status, string(a.raw))
	}
	a := e.do(t, req{path: "/v1/calls/c-1/cancel"})
	if a.status != 200 || a.rec.Status != queue.StatusCanceled {
		t.Fatalf("cancel: %d %s", a.status, a.raw)
	}
	if _, err := asynq.NewInspectorFromRedisClient(e.rdb).GetTaskInfo(queue.QueueCode, "c-1"); err == nil {
		t.Error("the canceled message's task is still in asynq")
	}
	// Canceling again is fine; canceling a message being dialled is not.
	if a := e.do(t, req{path: "/v1/calls/c-1/cancel"}); a.status != 200 {
		t.Errorf("second cancel: %d %s", a.status, a.raw)
	}
	if a := e.do(t, req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"4821","message_id":"c-2"}`}); a.status != 201 {
		t.Fatal(a.status)
	}
	if out, _, err := e.q.Claim(context.Background(), queue.Key("shop", "c-2"), 1, "w1", "s", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatal(out, err)
	}
	if a := e.do(t, req{path: "/v1/calls/c-2/cancel"}); a.status != 409 || a.err.Code != api.CodeNotCancelable {
		t.Errorf("cancel while dialing: %d %s, want 409 not_cancelable", a.status, a.raw)
	}
}

func TestErrorCodes(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.API.MaxBodyBytes = 1024
		c.API.Apps = append(c.API.Apps, config.App{ID: "slow", Key: shopKey, RateLimit: 2, Templates: []string{"*"}})
	})
	long := strings.Repeat("x", 33)
	cases := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"invalid_number", req{path: "/v1/calls/code", body: `{"to":"13800138000","code":"1234"}`}, 400, "invalid_number"},
		{"invalid_code", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"12a"}`}, 400, "invalid_code"},
		{"invalid_play_times", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","play_times":4}`}, 400, "invalid_play_times"},
		{"invalid_message_id", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","message_id":"a b"}`}, 400, "invalid_message_id"},
		{"invalid_language", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","language":"xx"}`}, 400, "invalid_language"},
		{"invalid_callback_url", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","callback_url":"ftp://x"}`}, 400, "invalid_callback_url"},
		{"invalid_session_context", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","session_context":"` + strings.Repeat("s", 513) + `"}`}, 400, "invalid_session_context"},
		{"unknown field", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234","CalledNumber":"x"}`}, 400, api.CodeInvalidRequest},
		{"not JSON", req{path: "/v1/calls/code", body: `to=+8613800138000`}, 400, api.CodeInvalidRequest},
		{"trailing data", req{path: "/v1/calls/code", body: `{"to":"+8613800138000","code":"1234"}{}`}, 400, api.CodeInvalidRequest},
		{"body_too_large", req{path: "/v1/calls/code", body: `{"to":"` + strings.Repeat("1", 2000) + `"}`}, 413, api.CodeBodyTooLarge},
		{"template_not_allowed", req{path: "/v1/calls/tts", body: `{"to":"+8613800138000","template_id":"outage","params":["x"]}`}, 403, api.CodeTemplateNotAllowed},
		{"template_not_approved", req{path: "/v1/calls/tts", app: "bank", key: bankKey, body: `{"to":"+8613800138000","template_id":"outage","params":["x"]}`}, 403, "template_not_approved"},
		{"template_not_found", req{path: "/v1/calls/tts", app: "bank", key: bankKey, body: `{"to":"+8613800138000","template_id":"nope","params":[]}`}, 404, "template_not_found"},
		{"param_too_long", req{path: "/v1/calls/tts", body: `{"to":"+8613800138000","template_id":"delivery","params":["a","` + long + `","c"]}`}, 400, api.CodeParamTooLong},
		{"invalid_params", req{path: "/v1/calls/tts", body: `{"to":"+8613800138000","template_id":"delivery","params":["a"]}`}, 400, "invalid_params"},
		{"not_found", req{method: "GET", path: "/v1/calls/nope"}, 404, api.CodeNotFound},
		{"no such endpoint", req{method: "GET", path: "/v2/x"}, 404, api.CodeNotFound},
		{"unclean path", req{method: "GET", path: "//v1/calls/x"}, 404, api.CodeNotFound}, // not the mux's HTML redirect
		{"dot segments", req{path: "/v1/calls/x/../code", body: `{"to":"+8613800138000","code":"1234"}`}, 404, api.CodeNotFound},
		{"method_not_allowed", req{method: "DELETE", path: "/v1/calls/x"}, 405, api.CodeMethodNotAllowed},
	}
	for _, c := range cases {
		a := e.do(t, c.r)
		if a.status != c.status || a.err.Code != c.code {
			t.Errorf("%s: %d %q (%s), want %d %q", c.name, a.status, a.err.Code, a.err.Message, c.status, c.code)
		}
	}
	// Nothing of the above was enqueued.
	if n, _ := e.rdb.Keys(context.Background(), "vms:msg:*").Result(); len(n) != 0 {
		t.Errorf("refused requests left records: %v", n)
	}

	// rate_limited: 2 requests per second, burst 2.
	var limited int
	for i := 0; i < 5; i++ {
		a := e.do(t, req{method: "GET", path: "/v1/templates", app: "slow", key: shopKey})
		if a.status == 429 && a.err.Code == api.CodeRateLimited {
			limited++
		}
	}
	if limited < 2 {
		t.Errorf("%d of 5 rapid requests were rate limited at 2/s, want at least 2", limited)
	}
	time.Sleep(1100 * time.Millisecond)
	if a := e.do(t, req{method: "GET", path: "/v1/templates", app: "slow", key: shopKey}); a.status != 200 {
		t.Errorf("after waiting a second: %d %s", a.status, a.raw)
	}

	// duplicate_message is covered in TestIdempotentSend, not_cancelable in
	// TestCancel. Codes produced by policy gates keep their statuses.
	for code, status := range map[string]int{"frequency_limited": 429, "blocked": 403, "duplicate_message": 409,
		"signature_invalid": 401, "timestamp_skew": 401, "rate_limited": 429, "some_future_input_error": 400} {
		if got := api.HTTPStatus(code); got != status {
			t.Errorf("HTTPStatus(%s) = %d, want %d", code, got, status)
		}
	}
}

func TestTemplatesAndOpenAPI(t *testing.T) {
	e := newEnv(t, nil)
	a := e.do(t, req{method: "GET", path: "/v1/templates"})
	var list struct {
		Templates []api.TemplateInfo `json:"templates"`
	}
	if err := json.Unmarshal(a.raw, &list); err != nil || len(list.Templates) != 1 || list.Templates[0].ID != "delivery" || list.Templates[0].Placeholders != 3 {
		t.Fatalf("shop's templates: %s", a.raw)
	}
	if a := e.do(t, req{method: "GET", path: "/v1/templates/outage"}); a.status != 404 {
		t.Errorf("another app's template: %d", a.status)
	}
	if a := e.do(t, req{method: "GET", path: "/v1/templates/outage", app: "bank", key: bankKey}); a.status != 200 || !bytes.Contains(a.raw, []byte(`"pending"`)) {
		t.Errorf("bank's template: %d %s", a.status, a.raw)
	}
	resp, err := http.Get(e.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v %q", err, doc.OpenAPI)
	}
	for path, method := range map[string]string{"/v1/calls/code": "post", "/v1/calls/tts": "post",
		"/v1/calls/{message_id}": "get", "/v1/calls/{message_id}/cancel": "post", "/v1/templates": "get", "/v1/templates/{template_id}": "get"} {
		if doc.Paths[path][method] == nil {
			t.Errorf("openapi.json does not document %s %s", method, path)
		}
	}
}
