package sign

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzSignRoundTrip: a signature made by Signature verifies with Valid,
// and no longer does once any single byte of the method, path, timestamp,
// nonce or body is changed, or the key is.
func FuzzSignRoundTrip(f *testing.F) {
	f.Add([]byte("shop-key-0123456789abcdef"), "POST", "/v1/calls/code", "1767225600", "0123456789abcdef0123456789abcdef",
		[]byte(`{"to":"+8613800138000","code":"482913","play_times":1}`), uint8(4), uint16(3), byte(1))
	f.Add([]byte("k"), "GET", "/v1/suppressions/+8613800138000?x=1", "0", "n", []byte{}, uint8(1), uint16(0), byte(0x80))
	f.Fuzz(func(t *testing.T, key []byte, method, path, ts, nonce string, body []byte, field uint8, pos uint16, delta byte) {
		sig := Signature(key, method, path, ts, nonce, body)
		if len(sig) != 64 {
			t.Fatalf("signature %q is not 64 hex characters", sig)
		}
		if !Valid(key, sig, method, path, ts, nonce, body) {
			t.Fatal("a fresh signature does not verify")
		}
		if delta == 0 {
			delta = 1
		}
		flip := func(b []byte) []byte {
			if len(b) == 0 {
				return []byte{delta} // the "mutation" of an empty field: one byte added
			}
			b = bytes.Clone(b)
			b[int(pos)%len(b)] ^= delta
			return b
		}
		m, p, tsm, n, bd, k := method, path, ts, nonce, body, key
		switch field % 6 {
		case 0:
			m = string(flip([]byte(method)))
		case 1:
			p = string(flip([]byte(path)))
		case 2:
			tsm = string(flip([]byte(ts)))
		case 3:
			n = string(flip([]byte(nonce)))
		case 4:
			bd = flip(body)
		case 5:
			k = flip(key)
		}
		if Valid(k, sig, m, p, tsm, n, bd) {
			t.Fatalf("field %d changed (%q %q %q %q %q), the signature still verifies", field%6, m, p, tsm, n, bd)
		}
		// A flipped byte of the signature itself is refused too.
		bad := []byte(sig)
		bad[int(pos)%len(bad)] ^= delta
		if Valid(key, string(bad), method, path, ts, nonce, body) {
			t.Fatal("a changed signature verifies")
		}
	})
}

// TestRequestSignsRequestURI: Request signs the path with its query string,
// and the timestamp it sets.
func TestRequestSignsRequestURI(t *testing.T) {
	body := []byte(`{"a":1}`)
	req, _ := http.NewRequest("POST", "https://vms.example.com/v1/calls/code?x=1&y=%2F", bytes.NewReader(body))
	now := time.Unix(1767225600, 0)
	Request(req, "shop", []byte("key"), body, now)
	h := req.Header
	if h.Get(HeaderTimestamp) != strconv.FormatInt(now.Unix(), 10) || h.Get(HeaderAppID) != "shop" || len(h.Get(HeaderNonce)) != 32 {
		t.Fatalf("headers %v", h)
	}
	if !Valid([]byte("key"), h.Get(HeaderSignature), "POST", "/v1/calls/code?x=1&y=%2F", h.Get(HeaderTimestamp), h.Get(HeaderNonce), body) {
		t.Fatal("signature does not cover the request URI")
	}
}
