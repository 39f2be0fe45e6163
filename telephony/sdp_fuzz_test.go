package telephony

import (
	"net/netip"
	"slices"
	"testing"
)

// FuzzParseSDP checks that ParseSDP never panics on carrier input and that
// whatever it accepts survives a BuildSDP/ParseSDP round trip: the same
// address and the same formats (payload type, name, rate), in order. The
// seeds in testdata/fuzz/FuzzParseSDP are RFC 3264 / RFC 4317 style answers
// and odd carrier ones (TestCarrierAnswers says what each parses to).
func FuzzParseSDP(f *testing.F) {
	f.Add(BuildSDP(1, netip.MustParseAddr("10.0.0.1"), 4000, []Format{FormatPCMU, FormatPCMA, FormatTelephoneEvent}))
	f.Add(BuildSDP(2, netip.MustParseAddr("::1"), 4000, []Format{FormatPCMA}))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 5 RTP/AVP 8 101\nc=IN IP4 1.2.3.4\na=rtpmap:101 telephone-event/8000\n"))
	f.Add([]byte("v=0\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseSDP(body)
		if err != nil || m.Refused() {
			return
		}
		again, err := ParseSDP(BuildSDP(7, m.Addr.Addr(), m.Addr.Port(), m.Formats))
		if err != nil {
			t.Fatalf("rebuilt SDP does not parse: %v", err)
		}
		if again.Addr != m.Addr || !slices.Equal(again.Formats, m.Formats) {
			t.Fatalf("rebuilt SDP differs: %+v vs %+v", again, m)
		}
	})
}
