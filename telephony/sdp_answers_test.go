package telephony

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// corpusInput reads the []byte input of a checked-in fuzz seed.
func corpusInput(t *testing.T, target, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
	if err != nil {
		t.Fatal(err)
	}
	_, line, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if !ok || !strings.HasPrefix(line, "[]byte(") || !strings.HasSuffix(line, ")") {
		t.Fatalf("%s/%s: not a one-[]byte fuzz seed", target, name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s/%s: %v", target, name, err)
	}
	return []byte(s)
}

// TestCarrierAnswers checks what the FuzzParseSDP seeds of RFC 3264 /
// RFC 4317 style and odd carrier answers parse to, and which telephone-event
// payload type a call would use.
func TestCarrierAnswers(t *testing.T) {
	for _, tc := range []struct {
		seed    string
		addr    string // "" when ParseSDP fails
		formats string
		dir     string
		dtmfPT  int // -1: none
	}{
		{"rfc3264_audio_answer_video_refused", "192.0.2.201:49174", "PCMU", "sendrecv", -1},
		{"rfc3264_hostname_c", "", "", "", 0},
		{"rfc3264_codecs_te97", "192.0.2.201:49172", "PCMU,PCMA,telephone-event", "sendrecv", 97},
		{"rfc4317_sendonly_hold", "192.0.2.101:49170", "PCMU,iLBC", "sendonly", -1},
		{"rfc4317_inactive", "192.0.2.201:49172", "PCMU", "inactive", -1},
		{"old_hold_c_zero", "0.0.0.0:49172", "PCMA", "sendrecv", -1},
		{"c_at_media_level_only", "198.51.100.20:30000", "PCMA,telephone-event", "sendrecv", 101},
		{"c_session_and_media", "198.51.100.20:30000", "PCMU", "sendrecv", -1},
		{"m_audio_0", "198.51.100.1:0", "PCMU", "sendrecv", -1},
		{"m_audio_0_no_c", "0.0.0.0:0", "PCMU,PCMA", "sendrecv", -1},
		{"te_on_96", "203.0.113.4:16384", "PCMA,telephone-event", "sendrecv", 96},
		{"te_on_126_ptime30", "203.0.113.4:16386", "PCMU,telephone-event", "sendrecv", 126},
		{"several_m_lines", "203.0.113.9:20000", "G729,PCMU", "sendrecv", -1},
		{"ipv6", "[2001:db8::5]:40000", "PCMU,telephone-event", "sendrecv", 101},
		{"carrier_extras", "203.0.113.50:25000", "PCMA,telephone-event,CN", "sendrecv", 101},
		{"lf_only_lowercase_names", "203.0.113.7:31000", "PCMU,PCMA,telephone-event", "sendrecv", 101},
		{"savp_profile", "203.0.113.7:31000", "PCMU", "sendrecv", -1},
		{"port_range", "203.0.113.7:31000", "PCMU", "sendrecv", -1},
		{"multicast_ttl", "", "", "", 0},
		{"dynamic_pt_no_rtpmap", "203.0.113.7:31000", "PCMU,PT 110", "sendrecv", -1},
		{"rtpmap_overrides_static", "203.0.113.7:31000", "G729", "sendrecv", -1},
		{"session_sendonly", "203.0.113.7:31000", "PCMA", "sendonly", -1},
		{"bad_pt", "", "", "", 0},
	} {
		m, err := ParseSDP(corpusInput(t, "FuzzParseSDP", tc.seed))
		if tc.addr == "" {
			if err == nil {
				t.Errorf("%s: parsed (%+v), want an error", tc.seed, m)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.seed, err)
			continue
		}
		if m.Addr.String() != tc.addr || formatList(m.Formats) != tc.formats || m.Direction != tc.dir {
			t.Errorf("%s: %s %s %s, want %s %s %s", tc.seed, m.Addr, formatList(m.Formats), m.Direction, tc.addr, tc.formats, tc.dir)
		}
		pt := -1
		offer := []Format{FormatPCMU, FormatPCMA, FormatTelephoneEvent}
		if _, ev, err := Negotiate(offer, m.Formats); err == nil && ev != nil {
			pt = int(ev.PT)
		}
		if pt != tc.dtmfPT {
			t.Errorf("%s: telephone-event PT %d, want %d", tc.seed, pt, tc.dtmfPT)
		}
	}
}
