package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/audit"
	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/queue"
)

const (
	numA = "+8613800138000"
	numB = "+8613900139000"
	numC = "+8613700137000"
)

func suppression(t *testing.T, a answer) policy.Suppression {
	t.Helper()
	var s policy.Suppression
	if err := json.Unmarshal(a.raw, &s); err != nil {
		t.Fatalf("answer is not a suppression: %s", a.raw)
	}
	return s
}

func checkOf(t *testing.T, a answer) api.SuppressionCheck {
	t.Helper()
	var c api.SuppressionCheck
	if a.status != 200 {
		t.Fatalf("check answered %d %s", a.status, a.raw)
	}
	if err := json.Unmarshal(a.raw, &c); err != nil {
		t.Fatalf("answer is not a check: %s", a.raw)
	}
	return c
}

func TestSuppressionsPerApp(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	eng := policy.FromConfig(e.cfg, e.rdb, nil)
	// A queue client that applies policy, as `vms api` has.
	pq := queue.NewClient(e.rdb, queue.Options{Templates: e.cfg.TemplateRegistry(), Policy: eng,
		DefaultLanguage: "en", Languages: map[string]bool{"en": true}})
	t.Cleanup(func() { _ = pq.Close() })

	// Add: 201 with the entry, number masked, audited as the app.
	a := e.do(t, req{path: "/v1/suppressions", body: `{"number":"` + numA + `","reason":"asked by email, ticket 4411"}`})
	s := suppression(t, a)
	if a.status != 201 || s.App != "shop" || s.Number != queue.MaskNumber(numA) || s.Source != api.SourceAPI || s.By != "app:shop" ||
		s.Reason != "asked by email, ticket 4411" || s.At.IsZero() {
		t.Fatalf("add: %d %s", a.status, a.raw)
	}
	if bytes.Contains(a.raw, []byte(numA[1:])) {
		t.Errorf("answer holds the full number: %s", a.raw)
	}
	// Adding again keeps the entry: 200, same time and reason.
	again := e.do(t, req{path: "/v1/suppressions", body: `{"number":"` + numA + `","reason":"other"}`})
	if s2 := suppression(t, again); again.status != 200 || !s2.At.Equal(s.At) || s2.Reason != s.Reason {
		t.Errorf("add again: %d %s, want 200 with the first entry", again.status, again.raw)
	}

	// The app's sends to the number are blocked; another app's are not.
	_, err := pq.SendCode(ctx, queue.CodeRequest{To: numA, Code: "4821", AppID: "shop"})
	var ie *queue.InputError
	if !errors.As(err, &ie) || ie.Code != "blocked" {
		t.Fatalf("shop send to a suppressed number: %v, want blocked", err)
	}
	if _, err := pq.SendCode(ctx, queue.CodeRequest{To: numA, Code: "4821", AppID: "bank"}); err != nil {
		t.Fatalf("bank send: %v", err)
	}

	// Check and list: the owner sees it, the other app does not.
	if c := checkOf(t, e.do(t, req{method: "GET", path: "/v1/suppressions/" + numA})); !c.Suppressed || c.Global ||
		c.Suppression == nil || c.Suppression.Reason != s.Reason || c.Number != queue.MaskNumber(numA) {
		t.Errorf("shop check: %+v", c)
	}
	if c := checkOf(t, e.do(t, req{method: "GET", path: "/v1/suppressions/" + numA, app: "bank", key: bankKey})); c.Suppressed || c.Suppression != nil {
		t.Errorf("bank sees shop's suppression: %+v", c)
	}
	var list api.SuppressionList
	if a := e.do(t, req{method: "GET", path: "/v1/suppressions", app: "bank", key: bankKey}); a.status != 200 ||
		json.Unmarshal(a.raw, &list) != nil || len(list.Suppressions) != 0 {
		t.Errorf("bank's list: %d %s, want empty", a.status, a.raw)
	}
	if a := e.do(t, req{method: "DELETE", path: "/v1/suppressions/" + numA, app: "bank", key: bankKey}); a.status != 404 || a.err.Code != api.CodeNotFound {
		t.Errorf("bank removing shop's entry: %d %s, want 404", a.status, a.raw)
	}

	// The global list applies but is not shown, and an app cannot remove from it.
	if _, err := eng.AddSuppression(ctx, policy.GlobalScope, numB, "regulator complaint #77", "operator", "ops"); err != nil {
		t.Fatal(err)
	}
	ga := e.do(t, req{method: "GET", path: "/v1/suppressions/" + numB})
	if c := checkOf(t, ga); !c.Suppressed || !c.Global || c.Suppression != nil || bytes.Contains(ga.raw, []byte("regulator")) {
		t.Errorf("check of a globally suppressed number: %s, want suppressed, global, no details", ga.raw)
	}
	if a := e.do(t, req{method: "DELETE", path: "/v1/suppressions/" + numB}); a.status != 404 {
		t.Errorf("removing a global entry: %d %s, want 404", a.status, a.raw)
	}

	// A callee's opt-out stays: re-adding does not rewrite it, removing is refused.
	if err := eng.Suppress(ctx, "shop", numC, ""); err != nil {
		t.Fatal(err)
	}
	if a := e.do(t, req{path: "/v1/suppressions", body: `{"number":"` + numC + `","reason":"x"}`}); a.status != 200 || suppression(t, a).Source != "optout" {
		t.Errorf("add over an opt-out: %d %s, want 200 with the opt-out entry", a.status, a.raw)
	}
	if a := e.do(t, req{method: "DELETE", path: "/v1/suppressions/" + numC}); a.status != 403 || a.err.Code != api.CodeCalleeOptedOut {
		t.Errorf("removing an opt-out: %d %s, want 403 callee_opted_out", a.status, a.raw)
	}

	a = e.do(t, req{method: "GET", path: "/v1/suppressions"})
	if a.status != 200 || json.Unmarshal(a.raw, &list) != nil || len(list.Suppressions) != 2 ||
		list.Suppressions[0].Source != "optout" || list.Suppressions[1].Number != queue.MaskNumber(numA) {
		t.Errorf("shop's list: %d %s, want the opt-out then the API entry, without the global one", a.status, a.raw)
	}

	// Remove: 200, no longer suppressed, sends go through again.
	rm := e.do(t, req{method: "DELETE", path: "/v1/suppressions/" + numA})
	if c := checkOf(t, rm); c.Suppressed || c.Suppression != nil {
		t.Errorf("remove: %s", rm.raw)
	}
	if a := e.do(t, req{method: "DELETE", path: "/v1/suppressions/" + numA}); a.status != 404 {
		t.Errorf("second remove: %d, want 404", a.status)
	}
	if _, err := pq.SendCode(ctx, queue.CodeRequest{To: numA, Code: "4821", AppID: "shop"}); err != nil {
		t.Errorf("send after removal: %v", err)
	}

	// Audited like the CLI, with the app as actor, the number masked and hashed.
	var added, removed []audit.Entry
	err = eng.Audit().Scan(ctx, func(en audit.Entry) error {
		if en.Actor != "app:shop" {
			return nil
		}
		switch en.Type {
		case "suppression.added":
			added = append(added, en)
		case "suppression.removed":
			removed = append(removed, en)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := eng.NumberHash(ctx, numA)
	if len(added) != 1 || len(removed) != 1 || added[0].Subject != queue.MaskNumber(numA) ||
		added[0].Data["number_hash"] != hash || added[0].Data["source"] != api.SourceAPI || removed[0].Data["app"] != "shop" {
		t.Errorf("audit: added %+v removed %+v", added, removed)
	}
}

func TestSuppressionErrors(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"invalid_number", req{path: "/v1/suppressions", body: `{"number":"13800138000","reason":"x"}`}, 400, "invalid_number"},
		{"invalid_number (not a real number)", req{path: "/v1/suppressions", body: `{"number":"+999123","reason":"x"}`}, 400, "invalid_number"},
		{"invalid_number in the path", req{method: "GET", path: "/v1/suppressions/12345"}, 400, "invalid_number"},
		{"invalid_number in DELETE", req{method: "DELETE", path: "/v1/suppressions/abc"}, 400, "invalid_number"},
		{"no reason", req{path: "/v1/suppressions", body: `{"number":"` + numA + `"}`}, 400, api.CodeInvalidReason},
		{"blank reason", req{path: "/v1/suppressions", body: `{"number":"` + numA + `","reason":"  "}`}, 400, api.CodeInvalidReason},
		{"long reason", req{path: "/v1/suppressions", body: `{"number":"` + numA + `","reason":"` + strings.Repeat("r", api.MaxReasonLen+1) + `"}`}, 400, api.CodeInvalidReason},
		{"control characters", req{path: "/v1/suppressions", body: `{"number":"` + numA + `","reason":"a\nb"}`}, 400, api.CodeInvalidReason},
		{"unknown field", req{path: "/v1/suppressions", body: `{"number":"` + numA + `","reason":"x","app":"bank"}`}, 400, api.CodeInvalidRequest},
		{"wrong key", req{method: "GET", path: "/v1/suppressions", key: bankKey, app: "shop"}, 401, api.CodeSignatureInvalid},
		{"unsigned", req{method: "DELETE", path: "/v1/suppressions/" + numA, noAuth: true}, 401, api.CodeSignatureInvalid},
		{"method_not_allowed", req{method: "PUT", path: "/v1/suppressions/" + numA}, 405, api.CodeMethodNotAllowed},
	}
	for _, c := range cases {
		a := e.do(t, c.r)
		if a.status != c.status || a.err.Code != c.code {
			t.Errorf("%s: %d %q (%s), want %d %q", c.name, a.status, a.err.Code, a.err.Message, c.status, c.code)
		}
	}
	if keys, _ := e.rdb.Keys(context.Background(), "vms:suppress:*").Result(); len(keys) != 0 {
		t.Errorf("refused requests wrote suppressions: %v", keys)
	}
}

func TestSuppressionsAndKeysDocumented(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, pm := range [][2]string{{"/v1/suppressions", "post"}, {"/v1/suppressions", "get"},
		{"/v1/suppressions/{number}", "get"}, {"/v1/suppressions/{number}", "delete"}} {
		if doc.Paths[pm[0]][pm[1]] == nil {
			t.Errorf("openapi.json does not document %s %s", pm[1], pm[0])
		}
	}
	s := doc.Components.Schemas
	for _, want := range []struct{ schema, prop, value string }{
		{"Error", "code", api.CodeInvalidReason}, {"Error", "code", api.CodeCalleeOptedOut},
		{"CallbackReport", "event", "keypress"},
	} {
		if !slices.Contains(s[want.schema].Properties[want.prop].Enum, want.value) {
			t.Errorf("openapi.json %s.%s does not list %s", want.schema, want.prop, want.value)
		}
	}
	for _, p := range []string{"keys", "confirmed", "opted_out"} {
		if _, ok := s["Record"].Properties[p]; !ok {
			t.Errorf("openapi.json Record has no %s", p)
		}
		if _, ok := s["CallbackReport"].Properties[p]; !ok {
			t.Errorf("openapi.json CallbackReport has no %s", p)
		}
	}
}
