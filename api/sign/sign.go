// Package sign is the request signature of the vms HTTP API and of its
// status callbacks: HMAC-SHA256, keyed with the app key, over
//
//	METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n" hex(SHA-256(body))
//
// where PATH is the request path with its query string, if any, exactly as
// sent (e.g. /v1/calls/code), TIMESTAMP is Unix seconds and NONCE is a
// fresh random string of 16-64 characters. The signature is sent lowercase
// hex in the Signature header. Unlike the legacy cloud scheme the whole body
// is covered, so no field can be altered in transit.
package sign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Headers carrying the signature.
const (
	HeaderAppID     = "X-VMS-App-Id"
	HeaderTimestamp = "X-VMS-Timestamp"
	HeaderNonce     = "X-VMS-Nonce"
	HeaderSignature = "X-VMS-Signature"
	// HeaderEventID names the event of a status callback; the receiver
	// deduplicates on it.
	HeaderEventID = "X-VMS-Event-Id"
)

// StringToSign returns the canonical text that is signed.
func StringToSign(method, path, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return method + "\n" + path + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
}

// Signature returns the lowercase hex HMAC-SHA256 of the string to sign.
func Signature(key []byte, method, path, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(StringToSign(method, path, timestamp, nonce, body)))
	return hex.EncodeToString(m.Sum(nil))
}

// Valid reports, in constant time, whether sig is the signature of the
// request parts with key.
func Valid(key []byte, sig, method, path, timestamp, nonce string, body []byte) bool {
	want := Signature(key, method, path, timestamp, nonce, body)
	return hmac.Equal([]byte(want), []byte(sig))
}

// NewNonce returns 128 random bits, hex.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Request signs req (whose body is body) for app with key at time now: it
// sets the four signature headers.
func Request(req *http.Request, appID string, key, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := NewNonce()
	req.Header.Set(HeaderAppID, appID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, Signature(key, req.Method, req.URL.RequestURI(), ts, nonce, body))
}
