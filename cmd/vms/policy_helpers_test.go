package main

import (
	"os"
	"path/filepath"
	"testing"
)

// noLimitsConfig writes a config file without frequency limits and quiet
// hours, for tests that call the same simulator number at any hour.
func noLimitsConfig(t *testing.T) string {
	t.Helper()
	return writeConfig(t, `policy:
  hmac_secret: test-secret-0123456789
  frequency: {code: [], notify: []}
  quiet_hours: {code: {start: "", end: ""}, notify: {start: "", end: ""}}
trunks:
  - {name: carrier-sim, uri: "sip:127.0.0.1:5080", transport: udp, codecs: [PCMU]}
templates:
  - id: delivery
    text: "Hello {1}, your parcel {2} will be delivered today between {3}."
    language: en
    status: approved
`)
}

// defaultsConfig writes a config file of the embedded defaults' trunk and
// templates with an HMAC secret (the defaults alone name none, and are
// refused).
func defaultsConfig(t *testing.T) string {
	t.Helper()
	return writeConfig(t, `policy:
  hmac_secret: test-secret-0123456789
trunks:
  - {name: carrier-sim, uri: "sip:127.0.0.1:5080", transport: udp, codecs: [PCMU]}
templates:
  - id: delivery
    text: "Hello {1}, your parcel {2} will be delivered today between {3}."
    language: en
    status: approved
  - id: outage
    text: "Notice: planned maintenance in {1} tonight. We apologise for the inconvenience."
    language: en
    status: pending
`)
}

// writeConfig writes body as a config file in a temporary directory.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vms.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
