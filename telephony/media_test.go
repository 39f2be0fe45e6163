package telephony

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

var (
	callee     = netip.MustParseAddrPort("192.0.2.7:30000") // the answer's c= address, another port
	calleeSDP  = netip.MustParseAddrPort("192.0.2.7:4000")
	calleeIP   = callee.Addr()
	elsewhere  = netip.MustParseAddrPort("198.51.100.9:30000")
	answerPCMU = []Format{FormatPCMU, FormatTelephoneEvent}
)

// testReceiver is a receiver that is fed datagrams by hand.
func testReceiver(allow netip.Addr) (*receiver, *stream) {
	s := &stream{}
	s.setDestination(calleeSDP)
	return newReceiver(nil, s, allow, answerPCMU, int(FormatTelephoneEvent.PT), newKeyBox()), s
}

// pkt is an RTP packet: audio (PT 0), or with code >= 0 an RFC 4733 event.
func pkt(ssrc uint32, seq uint16, ts uint32, code int) []byte {
	b := make([]byte, 12, 12+160)
	b[0] = 2 << 6
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	if code < 0 {
		return append(b, make([]byte, 160)...)
	}
	b[1] = FormatTelephoneEvent.PT
	return append(b, byte(code), 0x80|10, 0, 160)
}

func keysIn(b *keyBox) string {
	var out strings.Builder
	for {
		select {
		case k := <-b.ch:
			out.WriteString(k.Key)
		default:
			return out.String()
		}
	}
}

func TestReceiverPinsSourceAndSSRC(t *testing.T) {
	r, s := testReceiver(calleeIP)
	now := time.Now()

	// Another host: nothing latches, nothing counts.
	r.handle(pkt(1, 1, 0, -1), elsewhere, now)
	r.handle(pkt(1, 2, 160, 9), elsewhere, now)
	if s.destination() != calleeSDP || r.packets != 0 || r.foreign != 2 || r.lastRTP.Load() != 0 {
		t.Fatalf("a foreign host's packets counted: dst %s, packets %d, foreign %d", s.destination(), r.packets, r.foreign)
	}
	// The callee's first packet pins its source and SSRC and latches.
	r.handle(pkt(0xAAAA, 100, 0, -1), callee, now)
	if s.destination() != callee || r.packets != 1 || r.ssrc != 0xAAAA {
		t.Fatalf("not latched onto the callee: dst %s, packets %d", s.destination(), r.packets)
	}
	// The accepted address, another SSRC, out of sequence: ignored.
	for _, seq := range []uint16{5, 9, 6, 7} {
		r.handle(pkt(0xBBBB, seq, uint32(seq)*160, 9), callee, now)
	}
	// ...another port with the pinned SSRC: ignored too.
	other := netip.AddrPortFrom(calleeIP, 30002)
	r.handle(pkt(0xAAAA, 101, 160, 8), other, now)
	if s.destination() != callee || r.packets != 1 || r.stray != 5 || keysIn(r.keys) != "" {
		t.Fatalf("stray SSRC counted: dst %s, packets %d, stray %d", s.destination(), r.packets, r.stray)
	}
	// The pinned stream's key counts.
	r.handle(pkt(0xAAAA, 101, 160, 1), callee, now)
	r.handle(pkt(0xAAAA, 102, 160, 1), callee, now) // the same event again
	if got := keysIn(r.keys); got != "1" {
		t.Fatalf("keys %q, want 1", got)
	}
	// A new SSRC from a new port (the carrier's media server changed) takes
	// over after ssrcLearnRun packets in sequence, with the 4th.
	moved := netip.AddrPortFrom(calleeIP, 30100)
	seq := uint16(65534) // the run wraps
	for i := 0; i < ssrcLearnRun-1; i++ {
		r.handle(pkt(0xCCCC, seq, 0, 2), moved, now)
		seq++
	}
	if s.destination() != callee || keysIn(r.keys) != "" {
		t.Fatal("moved before a full run in sequence")
	}
	r.handle(pkt(0xCCCC, seq, 0, 2), moved, now)
	if s.destination() != moved || r.ssrc != 0xCCCC || r.switches != 1 {
		t.Fatalf("did not move to the new stream: dst %s ssrc %x", s.destination(), r.ssrc)
	}
	if got := keysIn(r.keys); got != "2" {
		t.Fatalf("keys %q after the move, want 2", got)
	}
	// The old stream is now the stray one.
	r.handle(pkt(0xAAAA, 103, 320, 3), callee, now)
	if s.destination() != moved || keysIn(r.keys) != "" {
		t.Fatal("the old stream still counts")
	}
	// Payload types not in the answer neither pin nor count.
	p := pkt(0xCCCC, 2, 0, -1)
	p[1] = 99
	before := r.packets
	r.handle(p, moved, now)
	if r.packets != before || r.garbage != 1 {
		t.Fatalf("PT 99 counted: packets %d garbage %d", r.packets, r.garbage)
	}
}

func TestReceiverNoAcceptedAddress(t *testing.T) {
	r, s := testReceiver(netip.Addr{})
	r.handle(pkt(1, 1, 0, 5), callee, time.Now())
	if r.packets != 0 || s.destination() != calleeSDP || keysIn(r.keys) != "" {
		t.Fatal("RTP taken with no accepted address")
	}
}

func TestAcceptAddr(t *testing.T) {
	sig := netip.MustParseAddr("203.0.113.5")
	for _, tc := range []struct {
		mode   string
		answer string
		want   string
	}{
		{AcceptFromAnswer, "192.0.2.7:4000", "192.0.2.7"},
		{AcceptFromAnswer, "[::ffff:192.0.2.7]:4000", "192.0.2.7"},
		{AcceptFromAnswer, "0.0.0.0:4000", "invalid IP"}, // hold: nothing
		{AcceptFromAnswer, "224.0.0.1:4000", "invalid IP"},
		{AcceptFromSignalling, "10.1.1.1:4000", "203.0.113.5"},
	} {
		if got := acceptAddr(tc.mode, netip.MustParseAddrPort(tc.answer), sig).String(); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.mode, tc.answer, got, tc.want)
		}
	}
	ok := sip.NewResponse(200, "OK")
	ok.SetSource("203.0.113.5:5060")
	if got := signallingAddr(ok, Trunk{}); got != sig {
		t.Errorf("signallingAddr = %s", got)
	}
	if got := signallingAddr(nil, Trunk{URI: sip.Uri{Host: "198.51.100.1"}}); got.String() != "198.51.100.1" {
		t.Errorf("signallingAddr from the trunk = %s", got)
	}
}

func TestKeyFloodIsBounded(t *testing.T) {
	r, _ := testReceiver(calleeIP)
	now := time.Now()
	for i := 0; i < 100; i++ { // 100 distinct events (timestamps) in sequence
		r.handle(pkt(7, uint16(i), uint32(i)*800, i%16), callee, now)
	}
	got := keysIn(r.keys)
	if len(got) != maxKeysPerCall || r.keys.dropped.Load() != 100-maxKeysPerCall {
		t.Fatalf("%d keys delivered, %d dropped; want %d and %d", len(got), r.keys.dropped.Load(), maxKeysPerCall, 100-maxKeysPerCall)
	}
}

// TestDrainDropsWhatCameBeforeTheAnswer: datagrams queued on the socket
// before the receiver starts are read and dropped, whoever sent them.
func TestDrainDropsWhatCameBeforeTheAnswer(t *testing.T) {
	conn, peer, dst := udpPair(t)
	for i := 0; i < 50; i++ {
		if _, err := peer.WriteToUDPAddrPort(pkt(1, uint16(i), 0, 4), dst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	s := &stream{}
	s.setDestination(calleeSDP)
	src := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	r := newReceiver(conn, s, src.Addr(), answerPCMU, int(FormatTelephoneEvent.PT), newKeyBox())
	done := make(chan struct{})
	go func() { defer close(done); r.run() }()
	time.Sleep(20 * time.Millisecond) // drained by now; this one is after the answer
	if _, err := peer.WriteToUDPAddrPort(pkt(2, 1, 160, 6), dst); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	r.stop()
	<-done
	if r.drained != 50 || r.packets != 1 || keysIn(r.keys) != "6" || r.ssrc != 2 {
		t.Fatalf("drained %d, accepted %d (ssrc %d); want 50 drained and only the late packet taken", r.drained, r.packets, r.ssrc)
	}
}

func TestParseEvent(t *testing.T) {
	base := pkt(1, 1, 0x01020304, 11)
	if ts, code, ok := parseEvent(base); !ok || ts != 0x01020304 || code != 11 {
		t.Fatalf("plain: %x %d %v", ts, code, ok)
	}
	// Two CSRCs and a one-word header extension before the payload.
	p := append([]byte(nil), base[:12]...)
	p[0] |= 0x10 | 2
	p = append(p, 0, 0, 0, 1, 0, 0, 0, 2) // CSRCs
	p = append(p, 0xBE, 0xDE, 0, 1, 0, 0, 0, 0)
	p = append(p, 5, 0x80, 0, 160)
	if _, code, ok := parseEvent(p); !ok || code != 5 {
		t.Fatalf("csrc+ext: %d %v", code, ok)
	}
	// Padding that leaves less than an event, or more than the packet.
	q := append(append([]byte(nil), base...), 0, 0, 3)
	q[0] |= 0x20
	if _, code, ok := parseEvent(q); !ok || code != 11 {
		t.Fatalf("padded: %d %v", code, ok)
	}
	q[len(q)-1] = 200
	if _, _, ok := parseEvent(q); ok {
		t.Fatal("padding longer than the packet accepted")
	}
	if _, _, ok := parseEvent(base[:14]); ok {
		t.Fatal("short event accepted")
	}
}

func TestInfoKey(t *testing.T) {
	for _, tc := range []struct{ ct, body, want string }{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"},
		{"application/dtmf-relay", "signal= 11\nduration=100", "#"},
		{"Application/DTMF-Relay; charset=x", "Duration=160\r\nSignal=*\r\n", "*"},
		{"application/dtmf", "7", "7"},
		{"application/dtmf", " 10\r\n", "*"},
		{"application/dtmf", "d", "D"},
		{"application/dtmf", "Signal=5", ""},
		{"application/dtmf-relay", "Signal=16", ""},
		{"application/dtmf-relay", "", ""},
	} {
		got, ok := infoKey(tc.ct, []byte(tc.body))
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("infoKey(%q, %q) = %q %v, want %q", tc.ct, tc.body, got, ok, tc.want)
		}
	}
}

func TestDialogTagsMatch(t *testing.T) {
	invite := sip.NewRequest(sip.INVITE, sip.Uri{Host: "carrier"})
	from := &sip.FromHeader{Address: sip.Uri{Host: "vms"}, Params: sip.NewParams()}
	from.Params.Add("tag", "ours")
	invite.AppendHeader(from)
	ok := sip.NewResponse(200, "OK")
	to := &sip.ToHeader{Address: sip.Uri{Host: "carrier"}, Params: sip.NewParams()}
	to.Params.Add("tag", "theirs")
	ok.AppendHeader(to)

	req := func(fromTag, toTag string) *sip.Request {
		r := sip.NewRequest(sip.BYE, sip.Uri{Host: "vms"})
		f := &sip.FromHeader{Address: sip.Uri{Host: "carrier"}, Params: sip.NewParams()}
		if fromTag != "" {
			f.Params.Add("tag", fromTag)
		}
		tt := &sip.ToHeader{Address: sip.Uri{Host: "vms"}, Params: sip.NewParams()}
		if toTag != "" {
			tt.Params.Add("tag", toTag)
		}
		r.AppendHeader(f)
		r.AppendHeader(tt)
		return r
	}
	var d dialogTags
	if d.matches(req("theirs", "ours")) {
		t.Fatal("matched before the answer")
	}
	d.confirm(invite, ok)
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"theirs", "ours", true},
		{"ours", "theirs", false},
		{"theirs", "", false},
		{"", "ours", false},
		{"Theirs", "ours", false},
		{"theirs", "ours2", false},
	} {
		if got := d.matches(req(tc.from, tc.to)); got != tc.want {
			t.Errorf("From tag %q, To tag %q: %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestPortPoolRandomAndReleased(t *testing.T) {
	lo := 45000
	p := newPortPool(netip.MustParseAddr("127.0.0.1"), lo, lo+199) // 100 even ports
	var conns []*net.UDPConn
	seen := map[int]bool{}
	inOrder := 0
	last := -1
	for {
		c, err := p.acquire()
		if err != nil {
			if !errors.Is(err, errNoPorts) {
				t.Fatal(err)
			}
			break
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if seen[port] || port%2 == 1 || port < lo || port > lo+199 {
			t.Fatalf("port %d handed out twice or out of range", port)
		}
		if port == last+2 {
			inOrder++
		}
		seen[port], last = true, port
		conns = append(conns, c)
	}
	// Every free port was found (a few may be held by other processes).
	if len(conns) < 90 || p.used() != len(conns) {
		t.Fatalf("%d ports acquired, %d in use", len(conns), p.used())
	}
	if inOrder > len(conns)/4 {
		t.Errorf("%d of %d ports came in sequence: not random", inOrder, len(conns))
	}
	for _, c := range conns {
		p.release(c)
	}
	if p.used() != 0 {
		t.Fatalf("%d ports held after release", p.used())
	}
	// From an empty pool the port is not predictable.
	firsts := map[int]bool{}
	for i := 0; i < 20; i++ {
		c, err := p.acquire()
		if err != nil {
			t.Fatal(err)
		}
		firsts[c.LocalAddr().(*net.UDPAddr).Port] = true
		p.release(c)
	}
	if len(firsts) < 10 {
		t.Errorf("20 acquisitions from an empty pool gave only %d distinct ports", len(firsts))
	}
}

// TestStopDuringDrain: a call that ends while the drain still runs (a
// sprayer keeps the socket busy) still ends its receiver.
func TestStopDuringDrain(t *testing.T) {
	conn, peer, dst := udpPair(t)
	quit := make(chan struct{})
	sprayed := make(chan struct{})
	go func() {
		defer close(sprayed)
		p := pkt(1, 1, 0, -1)
		for {
			select {
			case <-quit:
				return
			default:
			}
			_, _ = peer.WriteToUDPAddrPort(p, dst)
		}
	}()
	defer func() { close(quit); <-sprayed }()
	time.Sleep(10 * time.Millisecond)
	s := &stream{}
	s.setDestination(calleeSDP)
	r := newReceiver(conn, s, calleeIP, answerPCMU, -1, newKeyBox())
	done := make(chan struct{})
	go func() { defer close(done); r.run() }()
	time.Sleep(2 * time.Millisecond)
	r.stop()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the receiver did not stop while draining a busy socket")
	}
}

// udpPair is a call's RTP socket and a peer on loopback, closed when the
// test ends; dst is the call socket's address.
func udpPair(t *testing.T) (conn, peer *net.UDPConn, dst netip.AddrPort) {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	conn, peer = listen(), listen()
	return conn, peer, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}
