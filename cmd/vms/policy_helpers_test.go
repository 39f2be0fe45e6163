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
	p := filepath.Join(t.TempDir(), "vms.yaml")
	body := `policy:
  frequency: {code: [], notify: []}
  quiet_hours: {code: {start: "", end: ""}, notify: {start: "", end: ""}}
trunks:
  - {name: carrier-sim, uri: "sip:127.0.0.1:5080", transport: udp, codecs: [PCMU]}
templates:
  - id: delivery
    text: "Hello {1}, your parcel {2} will be delivered today between {3}."
    language: en
    status: approved
`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
