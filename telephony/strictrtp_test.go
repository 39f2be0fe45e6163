package telephony_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	. "github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/telephony/sim"
	"github.com/vms-project/vms/tts"
)

// newSmallRig is newTestRig with an RTP range of n ports at a random base,
// small enough for a sprayer to cover it every few milliseconds.
func newSmallRig(t *testing.T, scenarios map[string]string, n int, edit func(*Config)) (*testRig, int, int) {
	t.Helper()
	table := map[string]sim.Scenario{}
	for num, s := range scenarios {
		sc, err := sim.ParseScenario(s)
		if err != nil {
			t.Fatal(err)
		}
		table[num] = sc
	}
	s, err := sim.Start(context.Background(), sim.Config{Scenarios: table})
	if err != nil {
		t.Fatal(err)
	}
	lo := 40000 + 2*rand.IntN(4000)
	hi := lo + n - 1
	cfg := Config{Listen: "127.0.0.1:0", RTPPortMin: lo, RTPPortMax: hi}
	if edit != nil {
		edit(&cfg)
	}
	d, err := NewDialer(cfg)
	if err != nil {
		_ = s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = d.Close()
	})
	tr := Trunk{Name: "sim", URI: sip.Uri{Host: s.Addr().Addr().String(), Port: int(s.Addr().Port())},
		Transport: "udp", Codecs: []tts.Codec{tts.PCMU, tts.PCMA}}
	return &testRig{sim: s, dialer: d, trunk: tr}, lo, hi
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
