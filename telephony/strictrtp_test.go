package telephony_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
)

// newSmallRig is newTestRig with an RTP range of n ports at a random base,
// small enough for a sprayer to cover it every few milliseconds.
func newSmallRig(t *testing.T, scenarios map[string]string, n int, edit func(*Config)) (*testRig, int, int) {
	t.Helper()
	s := startSim(t, sim.Config{}, scenarios)
	lo := 40000 + 2*rand.IntN(4000)
	hi := lo + n - 1
	cfg := Config{Listen: "127.0.0.1:0", RTPPortMin: lo, RTPPortMax: hi}
	if edit != nil {
		edit(&cfg)
	}
	return rigWith(t, s, cfg), lo, hi
}

// sprayer is an attacker on another host of the loopback network: it sends
// RTP audio and RFC 4733 events (key 9, a new event every round, sequence
// numbers in order, one SSRC) at every port of a range of 127.0.0.1 and
// counts the datagrams that come back to it.
type sprayer struct {
	conn     *net.UDPConn
	received atomic.Int64
	sent     atomic.Int64
	quit     chan struct{}
	wg       sync.WaitGroup
}

func startSprayer(t *testing.T, lo, hi int) *sprayer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2 (loopback is not a /8 here): %v", err)
	}
	s := &sprayer{conn: conn, quit: make(chan struct{})}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			_, _, err := conn.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				s.received.Add(1)
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		audio := make([]byte, 12+160)
		event := make([]byte, 12+4)
		var seq uint16 = 1000
		var ts uint32 = 5000
		for round := 0; ; round++ {
			select {
			case <-s.quit:
				return
			default:
			}
			for port := lo; port <= hi; port++ {
				dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
				rtpHeader(audio, 0, seq, ts, 0x5ca1ab1e, false)
				seq++
				rtpHeader(event, 101, seq, ts, 0x5ca1ab1e, true)
				seq++
				event[12], event[13] = 9, 0x80|10 // key 9, end of event
				binary.BigEndian.PutUint16(event[14:], 800)
				_, _ = conn.WriteToUDPAddrPort(audio, dst)
				_, _ = conn.WriteToUDPAddrPort(event, dst)
				s.sent.Add(2)
			}
			ts += 160
			time.Sleep(3 * time.Millisecond)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *sprayer) stop() {
	select {
	case <-s.quit:
		return
	default:
	}
	close(s.quit)
	time.Sleep(20 * time.Millisecond) // what is in flight arrives
	_ = s.conn.Close()
	s.wg.Wait()
}

func rtpHeader(b []byte, pt uint8, seq uint16, ts, ssrc uint32, marker bool) {
	b[0] = 2 << 6
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}

// TestRTPSprayFromAnotherHost is the RTP bleed attack (CVE-2017-14099): a
// host that is not the carrier sprays RTP and RFC 4733 key presses at the
// whole RTP range before and during a call. None of the call's audio may
// reach it and none of its keys may count, while the real callee, whose
// media comes from a port other than its SDP's, is still latched onto and
// its keys are recorded.
func TestRTPSprayFromAnotherHost(t *testing.T) {
	r, lo, hi := newSmallRig(t, map[string]string{"+800": "answer;sdp=nat;dtmf=1#@400ms"}, 20, nil)
	sp := startSprayer(t, lo, hi)
	time.Sleep(50 * time.Millisecond) // spraying before the call
	res := r.call(t, "+800", 2*time.Second, nil)
	sp.stop()
	c := r.simCall(t, "+800")
	t.Logf("sprayer sent %d, received %d; simulator received %d of %d; keys %q", sp.sent.Load(), sp.received.Load(), c.RTP.Packets, res.PacketsSent, keysOf(res.Keys))
	if n := sp.received.Load(); n != 0 {
		t.Errorf("%d packets of the call reached the sprayer at 127.0.0.2", n)
	}
	if got := keysOf(res.Keys); got != "1#" {
		t.Errorf("keys %q, want 1# (the callee's only; the sprayer's 9 must not count)", got)
	}
	if c.RTP.Packets < res.PacketsSent-10 {
		t.Errorf("simulator got %d of %d packets: vms did not latch onto the callee's RTP source", c.RTP.Packets, res.PacketsSent)
	}
	if n := r.dialer.RTPPortsInUse(); n != 0 {
		t.Errorf("%d RTP ports still held", n)
	}
}

// TestRTPSprayMediaTimeout: a sprayer's packets do not keep a call whose
// callee sends nothing alive past call.media_timeout.
func TestRTPSprayMediaTimeout(t *testing.T) {
	r, lo, hi := newSmallRig(t, map[string]string{"+801": "answer;silent"}, 20, nil)
	sp := startSprayer(t, lo, hi)
	res := r.call(t, "+801", 5*time.Second, func(req *CallRequest) { req.MediaTimeout = 700 * time.Millisecond })
	sp.stop()
	if res.Status != "media_timeout" || res.BillableMS > 2500 {
		t.Fatalf("silent callee under spray: %s after %d ms, want media_timeout after ~0.7 s", res.Status, res.BillableMS)
	}
	if n := sp.received.Load(); n != 0 {
		t.Errorf("%d packets reached the sprayer", n)
	}
}

// TestRTPAcceptFrom: a carrier whose SDP names an IP address its media does
// not come from. With rtp.accept_from: answer (the default) none of its RTP
// is taken; with signalling, RTP from the address of its SIP is.
func TestRTPAcceptFrom(t *testing.T) {
	for _, mode := range []string{"", AcceptFromSignalling} {
		t.Run("mode="+mode, func(t *testing.T) {
			r, _, _ := newSmallRig(t, map[string]string{"+810": "answer;sdp=elsewhere;dtmf=5@300ms"}, 20,
				func(c *Config) { c.RTPAcceptFrom = mode })
			res := r.call(t, "+810", 1500*time.Millisecond, nil)
			c := r.simCall(t, "+810")
			if mode == "" {
				if res.PacketsReceived != 0 || len(res.Keys) != 0 || c.RTP.Packets != 0 {
					t.Fatalf("answer mode took RTP from an address not in the answer: received %d, keys %q; simulator got %d",
						res.PacketsReceived, keysOf(res.Keys), c.RTP.Packets)
				}
				return
			}
			if keysOf(res.Keys) != "5" || res.PacketsReceived < 30 || c.RTP.Packets < res.PacketsSent-10 {
				t.Fatalf("signalling mode: received %d, keys %q; simulator got %d of %d",
					res.PacketsReceived, keysOf(res.Keys), c.RTP.Packets, res.PacketsSent)
			}
		})
	}
	if _, err := NewDialer(Config{Listen: "127.0.0.1:0", RTPPortMin: 40000, RTPPortMax: 40010, RTPAcceptFrom: "anywhere"}); err == nil ||
		!strings.Contains(err.Error(), `"anywhere"`) {
		t.Fatalf("RTPAcceptFrom anywhere: err = %v", err)
	}
}

// sipPeer sends hand-made SIP requests to the dialer from 127.0.0.1 and
// returns the status code of the response.
type sipPeer struct {
	t    *testing.T
	conn *net.UDPConn
	to   netip.AddrPort
	cseq int
}

func newSIPPeer(t *testing.T, to netip.AddrPort) *sipPeer {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &sipPeer{t: t, conn: conn, to: to, cseq: 100}
}

// send sends method in the dialog given by callID, the carrier's tag (From)
// and ours (To; "" for none), and returns the final response's code.
func (p *sipPeer) send(method, callID, fromTag, toTag, contentType, body string) int {
	p.t.Helper()
	p.cseq++
	branch := "z9hG4bK" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") + "x" + string(rune('a'+p.cseq%26))
	local := p.conn.LocalAddr().String()
	to := "<sip:vms@" + p.to.String() + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	var b strings.Builder
	b.WriteString(method + " sip:vms@" + p.to.String() + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP " + local + ";branch=" + branch + "\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:carrier@" + local + ">;tag=" + fromTag + "\r\n")
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Call-ID: " + callID + "\r\n")
	b.WriteString("CSeq: " + strconv.Itoa(p.cseq) + " " + method + "\r\n")
	b.WriteString("Contact: <sip:carrier@" + local + ">\r\n")
	if contentType != "" {
		b.WriteString("Content-Type: " + contentType + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if _, err := p.conn.WriteToUDPAddrPort([]byte(b.String()), p.to); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			p.t.Fatalf("%s: no response: %v", method, err)
		}
		msg := string(buf[:n])
		var code int
		if !strings.HasPrefix(msg, "SIP/2.0 ") || len(msg) < 11 || !strings.Contains(msg, branch) {
			continue // a retransmission of an earlier response
		}
		for _, c := range msg[8:11] {
			code = code*10 + int(c-'0')
		}
		if code < 200 {
			continue
		}
		if method == "INVITE" {
			// ACK the final response (same branch: RFC 3261 §17.1.1.3).
			toHdr := to
			if i := strings.Index(msg, "\r\nTo: "); i >= 0 {
				toHdr = msg[i+6 : i+6+strings.Index(msg[i+6:], "\r\n")]
			}
			ack := "ACK sip:vms@" + p.to.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=" + branch +
				"\r\nMax-Forwards: 70\r\nFrom: <sip:carrier@" + local + ">;tag=" + fromTag + "\r\nTo: " + toHdr +
				"\r\nCall-ID: " + callID + "\r\nCSeq: " + strconv.Itoa(p.cseq) + " ACK\r\nContent-Length: 0\r\n\r\n"
			_, _ = p.conn.WriteToUDPAddrPort([]byte(ack), p.to)
		}
		return code
	}
}

// TestInDialogRequestsMustMatchTheDialog: a BYE, INFO, re-INVITE or UPDATE
// with the call's Call-ID but a wrong tag gets 481 and neither ends the call
// nor presses a key; the same INFO with both tags right counts. A flood of
// INFO keys is cut at 64 and the rest counted.
func TestInDialogRequestsMustMatchTheDialog(t *testing.T) {
	r, _, _ := newSmallRig(t, map[string]string{"+820": "answer"}, 20, nil)
	done := make(chan Result, 1)
	go func() { done <- r.call(t, "+820", 2500*time.Millisecond, nil) }()

	var callID, local, remote string
	deadline := time.Now().Add(5 * time.Second)
	for remote == "" && time.Now().Before(deadline) {
		for _, c := range r.sim.Calls() {
			if c.To == "+820" && !c.AnsweredAt.IsZero() {
				callID = c.CallID
			}
		}
		if callID != "" {
			local, remote = r.dialer.DialogTags(callID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if remote == "" {
		t.Fatal("call not answered")
	}
	p := newSIPPeer(t, r.dialer.Addr())
	sdp := string(BuildSDP(9, netip.MustParseAddr("127.0.0.1"), 4000, []Format{FormatPCMU}))
	for _, tc := range []struct {
		name, method, from, to, ctype, body string
	}{
		{"BYE, wrong carrier tag", "BYE", "forged", local, "", ""},
		{"BYE, wrong tag of ours", "BYE", remote, "forged", "", ""},
		{"BYE, tags swapped", "BYE", local, remote, "", ""},
		{"BYE, no To tag", "BYE", remote, "", "", ""},
		{"INFO, wrong carrier tag", "INFO", "forged", local, "application/dtmf-relay", "Signal=9\r\nDuration=160\r\n"},
		{"INFO, wrong tag of ours", "INFO", remote, "forged", "application/dtmf", "9"},
		{"re-INVITE, wrong carrier tag", "INVITE", "forged", local, "application/sdp", sdp},
		{"UPDATE, wrong tag of ours", "UPDATE", remote, "forged", "application/sdp", sdp},
	} {
		if code := p.send(tc.method, callID, tc.from, tc.to, tc.ctype, tc.body); code != 481 {
			t.Errorf("%s: %d, want 481", tc.name, code)
		}
	}
	if code := p.send("BYE", "another-"+callID, remote, local, "", ""); code != 481 {
		t.Errorf("BYE with another Call-ID: %d, want 481", code)
	}
	// The right tags: counted. Then a flood: 64 keys in all, the rest dropped.
	if code := p.send("INFO", callID, remote, local, "application/dtmf-relay", "Signal=7\r\nDuration=160\r\n"); code != 200 {
		t.Errorf("INFO in the dialog: %d, want 200", code)
	}
	for i := 0; i < 70; i++ {
		if code := p.send("INFO", callID, remote, local, "application/dtmf", "3"); code != 200 {
			t.Fatalf("INFO %d of the flood: %d", i, code)
		}
	}
	res := <-done
	if res.HungUpBy != "caller" || !res.PlayedToEnd {
		t.Errorf("the call was ended by a forged request: hung up by %q, played to end %v", res.HungUpBy, res.PlayedToEnd)
	}
	if got := keysOf(res.Keys); got != "7"+strings.Repeat("3", 63) || res.KeysDropped != 7 {
		t.Errorf("keys %q (%d), %d dropped; want 7 then 63 threes, 7 dropped", got, len(got), res.KeysDropped)
	}
	if c := r.simCall(t, "+820"); c.HungUpBy != "caller" {
		t.Errorf("simulator: hung up by %q", c.HungUpBy)
	}
}
