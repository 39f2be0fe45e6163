package telephony

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestSDPRoundTrip(t *testing.T) {
	for _, host := range []string{"192.0.2.10", "2001:db8::7"} {
		t.Run(host, func(t *testing.T) {
			ip := netip.MustParseAddr(host)
			formats := []Format{FormatPCMU, FormatPCMA, FormatTelephoneEvent}
			body := BuildSDP(42, ip, 40000, formats)

			text := string(body)
			for _, want := range []string{
				"v=0\r\n", "o=vms 42 42 IN ", "s=vms\r\n", "t=0 0\r\n",
				"m=audio 40000 RTP/AVP 0 8 101\r\n",
				"a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:8 PCMA/8000\r\n",
				"a=rtpmap:101 telephone-event/8000\r\n", "a=fmtp:101 0-16\r\n",
				"a=ptime:20\r\n", "a=sendrecv\r\n",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("BuildSDP output lacks %q:\n%s", want, text)
				}
			}
			wantC := "c=IN IP4 " + host
			if ip.Is6() {
				wantC = "c=IN IP6 " + host
			}
			if !strings.Contains(text, wantC) {
				t.Errorf("BuildSDP output lacks %q:\n%s", wantC, text)
			}

			m, err := ParseSDP(body)
			if err != nil {
				t.Fatalf("ParseSDP(BuildSDP): %v", err)
			}
			want := Media{Addr: netip.AddrPortFrom(ip, 40000), Formats: formats, Direction: "sendrecv"}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", m, want)
			}
		})
	}
}

func TestSDPStaticPayloadTypesWithoutRtpmap(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
		"m=audio 5004 RTP/AVP 8 0 18 96\r\na=sendonly\r\n"
	m, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Format{FormatPCMA, FormatPCMU, {PT: 18, Name: "G729", Rate: 8000}, {PT: 96}}
	if !reflect.DeepEqual(m.Formats, want) {
		t.Errorf("formats = %+v, want %+v", m.Formats, want)
	}
	if m.Direction != "sendonly" {
		t.Errorf("direction = %q, want sendonly", m.Direction)
	}
	if m.Addr != netip.MustParseAddrPort("10.0.0.1:5004") {
		t.Errorf("addr = %v", m.Addr)
	}
}

func TestSDPMediaLevelConnectionAndLowercaseNames(t *testing.T) {
	// Media-level c= wins over the session level; LF line endings; names in
	// lower case are canonicalised; the first m=audio is used.
	body := "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n" +
		"m=video 6000 RTP/AVP 96\n" +
		"m=audio 7000 RTP/AVP 97 8\nc=IN IP4 10.0.0.2\na=rtpmap:97 telephone-event/8000\na=rtpmap:8 pcma/8000\na=inactive\n"
	m, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr != netip.MustParseAddrPort("10.0.0.2:7000") {
		t.Errorf("addr = %v, want 10.0.0.2:7000", m.Addr)
	}
	want := []Format{{PT: 97, Name: "telephone-event", Rate: 8000}, FormatPCMA}
	if !reflect.DeepEqual(m.Formats, want) {
		t.Errorf("formats = %+v, want %+v", m.Formats, want)
	}
	if m.Direction != "inactive" {
		t.Errorf("direction = %q", m.Direction)
	}
}

func TestSDPRefusedStream(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
	m, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatalf("m=audio 0 must parse: %v", err)
	}
	if !m.Refused() || m.Addr.Port() != 0 {
		t.Errorf("addr = %v, want port 0", m.Addr)
	}

	// Without any c= line the refusal still parses.
	body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
	m, err = ParseSDP([]byte(body))
	if err != nil || !m.Refused() {
		t.Errorf("refused without c=: %+v, %v", m, err)
	}
}

func TestSDPMalformed(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "empty body"},
		{"not sdp", "hello world", "not SDP"},
		{"json", `{"sdp": true}`, "not SDP"},
		{"no audio", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n", "no m=audio"},
		{"no media", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\n", "no m=audio"},
		{"no c=", head + "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", "no c= address"},
		{"hostname c=", head + "c=IN IP4 carrier.example\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n", "not an IP address"},
		{"bad port", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n", "not SDP"},
		{"port text", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio abc RTP/AVP 0\r\n", "not SDP"},
		{"bad pt", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 300\r\n", "bad payload type"},
		{"no pt", head + "c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP\r\n", "no payload types"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSDP([]byte(c.body))
			if err == nil {
				t.Fatal("ParseSDP succeeded, want error")
			}
			if !errors.Is(err, ErrInvalidSDP) {
				t.Errorf("error %v does not wrap ErrInvalidSDP", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestSDPNegotiate(t *testing.T) {
	offer := []Format{FormatPCMU, FormatPCMA, FormatTelephoneEvent}
	te96 := Format{PT: 96, Name: "telephone-event", Rate: 8000}

	audio, dtmf, err := Negotiate(offer, []Format{FormatPCMA, te96})
	if err != nil {
		t.Fatal(err)
	}
	if audio != FormatPCMA {
		t.Errorf("audio = %+v, want PCMA", audio)
	}
	if dtmf == nil || *dtmf != te96 {
		t.Errorf("dtmf = %+v, want PT 96 from the answer", dtmf)
	}

	// Answer order wins; non-offered and non-audio formats are skipped.
	audio, dtmf, err = Negotiate(offer, []Format{te96, {PT: 18, Name: "G729", Rate: 8000}, FormatPCMU})
	if err != nil || audio != FormatPCMU || dtmf == nil {
		t.Errorf("got %+v %+v %v, want PCMU with dtmf", audio, dtmf, err)
	}

	// No telephone-event offered: none negotiated.
	_, dtmf, err = Negotiate([]Format{FormatPCMU}, []Format{FormatPCMU, te96})
	if err != nil || dtmf != nil {
		t.Errorf("dtmf = %+v, %v; want nil", dtmf, err)
	}

	_, _, err = Negotiate([]Format{FormatPCMU, FormatPCMA}, []Format{{PT: 18, Name: "G729", Rate: 8000}})
	if !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("err = %v, want ErrNoCommonCodec", err)
	}
	if want := "no common codec: offered PCMU,PCMA; answered G729"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	if _, _, err := Negotiate(offer, nil); !errors.Is(err, ErrNoCommonCodec) {
		t.Errorf("empty answer: err = %v", err)
	}
	if _, _, err := Negotiate(offer, []Format{FormatTelephoneEvent}); !errors.Is(err, ErrNoCommonCodec) {
		t.Errorf("only telephone-event: err = %v", err)
	}
}
