package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/api/sign"
	"github.com/vms-project/vms/config"
)

var fuzzMethods = []string{http.MethodPost, http.MethodGet, http.MethodDelete, http.MethodPut}

// FuzzAPIRequest sends fuzzed paths and bodies through the real signed
// handler (a real Redis behind it), each correctly signed so it reaches the
// routing and the JSON parsers. No input may panic or get a 5xx, and every
// refusal is a JSON {code, message}.
func FuzzAPIRequest(f *testing.F) {
	e := newEnv(f, func(c *config.Config) {
		for i := range c.API.Apps {
			c.API.Apps[i].RateLimit = 100000 // rate_limited answers would hide the parsers
		}
	})
	// More seeds are in testdata/fuzz/FuzzAPIRequest.
	f.Add(uint8(0), "/v1/calls/code", []byte(`{"to":"+8613800138000","code":"482913","play_times":1}`))
	f.Add(uint8(0), "/v1/calls/tts", []byte(`{"to":"+8613800138000","template_id":"delivery","params":["Ann","A1","9 and 11"]}`))
	f.Add(uint8(1), "/v1/calls/m-1", []byte{})
	f.Add(uint8(0), "/v1/suppressions", []byte(`{"number":"+8613800138000","reason":"asked"}`))
	keys := map[string]string{"shop": shopKey, "bank": bankKey}
	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		app := "shop"
		if m&0x80 != 0 {
			app = "bank"
		}
		// Only what a server could read off a request line reaches the handler.
		hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + path + " HTTP/1.1\r\nHost: vms.test\r\n\r\n")))
		if err != nil {
			return
		}
		hr.Body, hr.ContentLength = http.NoBody, int64(len(body))
		if len(body) > 0 {
			hr.Body = readCloser{bytes.NewReader(body)}
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		nonce := sign.NewNonce()
		hr.Header.Set(sign.HeaderAppID, app)
		hr.Header.Set(sign.HeaderTimestamp, ts)
		hr.Header.Set(sign.HeaderNonce, nonce)
		hr.Header.Set(sign.HeaderSignature, sign.Signature([]byte(keys[app]), method, hr.URL.RequestURI(), ts, nonce, body))
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, hr)
		res := w.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %q %q: %d %s", method, path, body, res.StatusCode, w.Body.Bytes())
		}
		if res.StatusCode == http.StatusUnauthorized {
			t.Fatalf("%s %q: a correctly signed request was refused: %s", method, path, w.Body.Bytes())
		}
		if res.StatusCode >= 400 {
			var ae api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &ae); err != nil || ae.Code == "" || ae.Message == "" ||
				res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s %q %q: error answer %d is not {code, message}: %s", method, path, body, res.StatusCode, w.Body.Bytes())
			}
		} else if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: %d with a body that is not JSON: %q", method, path, res.StatusCode, w.Body.Bytes())
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
