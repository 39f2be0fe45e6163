package telephony

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/vms-project/vms/queue"
)

// Where the callee's RTP may come from (Config.RTPAcceptFrom, config
// rtp.accept_from).
const (
	// AcceptFromAnswer takes RTP only from the IP address of the answer's
	// c= line (any port: NAT may change it). The default.
	AcceptFromAnswer = "answer"
	// AcceptFromSignalling takes RTP only from the IP address the trunk's
	// 200 OK came from, for carriers whose SDP names an address their media
	// does not come from (a private address behind NAT).
	AcceptFromSignalling = "signalling"
)

const (
	// maxKeysPerCall bounds the key presses one call records; more are
	// counted (Result.KeysDropped) and dropped.
	maxKeysPerCall = 64
	// ssrcLearnRun is how many packets of a new SSRC (or from a new port of
	// the accepted address) must arrive with consecutive sequence numbers
	// before the receiver moves to it, as Asterisk's strictrtp learns.
	ssrcLearnRun = 4
	// drainIdle ends draining the packets queued before the answer: the
	// socket has been empty for this long. drainMax caps the drain so a
	// sprayer cannot keep it going: it is far more than the socket's receive
	// buffer can hold, so whatever sat in it at the answer is gone by then.
	drainIdle = time.Millisecond
	drainMax  = 1 << 14
)

// keyBox is one call's key presses on their way to the call loop, from the
// RTP receiver and from SIP INFO. At most maxKeysPerCall are ever delivered;
// the rest are counted in dropped.
type keyBox struct {
	ch      chan queue.KeyPress
	taken   atomic.Int32
	dropped atomic.Int64
}

func newKeyBox() *keyBox { return &keyBox{ch: make(chan queue.KeyPress, maxKeysPerCall)} }

// offer delivers k unless the call has had its share of keys.
func (b *keyBox) offer(k queue.KeyPress) bool {
	if b.taken.Add(1) > maxKeysPerCall {
		b.taken.Add(-1)
		b.dropped.Add(1)
		return false
	}
	select {
	case b.ch <- k:
		return true
	default: // cannot happen: the channel holds maxKeysPerCall
		b.dropped.Add(1)
		return false
	}
}

// receiver reads the callee's RTP for one call, from the answer on (packets
// queued before it are drained unread) and only from one IP address: the
// answer's c= address, or the trunk's signalling address (rtp.accept_from).
// The first packet from there pins the source (address and port) and the
// SSRC, and the send address latches onto that source (symmetric RTP, for
// carriers behind NAT). Another SSRC or port of the accepted address takes
// over only after ssrcLearnRun packets in sequence. Only packets of the
// pinned source count as media (media timeout) and as key presses (RFC 4733
// telephone-events). Everything else is counted and ignored.
type receiver struct {
	conn   *net.UDPConn
	stream *stream
	allow  netip.Addr // the only source IP taken; invalid: none
	pts    [128]bool  // payload types the answer may send
	dtmfPT int        // -1 when the answer has no telephone-event
	keys   *keyBox

	lastRTP atomic.Int64 // unix nanoseconds of the last accepted packet

	// mu orders the drain's read deadlines with stop's, so that a call
	// ending while the drain runs still ends the receiver.
	mu      sync.Mutex
	stopped bool

	// Read after run returns.
	packets  int // accepted
	garbage  int // not RTP, or a payload type not in the answer
	drained  int // queued before the answer
	foreign  int // from another IP address
	stray    int // from the accepted address, not the pinned source or SSRC
	switches int // moves to a new SSRC or port after a run in sequence

	pinned   bool
	src      netip.AddrPort
	ssrc     uint32
	cand     candidate
	lastTS   uint32 // RTP timestamp of the last event reported
	anyEvent bool
}

// candidate is a source the receiver may move to once it has sent a run of
// packets in sequence.
type candidate struct {
	src  netip.AddrPort
	ssrc uint32
	seq  uint16
	run  int
}

const rtpVersion2 = 2 << 6

// newReceiver reads conn for the callee's RTP. answer gives the payload
// types and the telephone-event payload type (dtmfPT, -1 for none).
func newReceiver(conn *net.UDPConn, s *stream, allow netip.Addr, answer []Format, dtmfPT int, keys *keyBox) *receiver {
	r := &receiver{conn: conn, stream: s, allow: allow.Unmap(), dtmfPT: dtmfPT, keys: keys}
	for _, f := range answer {
		r.pts[f.PT&0x7F] = true
	}
	r.pts[13] = true // comfort noise (RFC 3389), sent whether answered or not
	if dtmfPT >= 0 && dtmfPT < 128 {
		r.pts[dtmfPT] = true
	}
	return r
}

// acceptAddr is the IP address RTP is taken from: the answer's c= address
// or the trunk's signalling address. An unusable address (unspecified, as
// c=0.0.0.0 for hold) takes nothing.
func acceptAddr(mode string, answer netip.AddrPort, signalling netip.Addr) netip.Addr {
	a := answer.Addr()
	if mode == AcceptFromSignalling {
		a = signalling
	}
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}
	}
	return a
}

// run drains what the socket queued before the answer, then reads until
// stop is called or the socket closes.
func (r *receiver) run() {
	buf := make([]byte, 1500)
	r.drained = r.drain(buf)
	for {
		n, src, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.handle(buf[:n], src, time.Now())
	}
}

// drain reads and drops the datagrams queued on the socket: those that
// arrived before the answer, when nothing read it. (Draining, rather than
// comparing kernel receive timestamps with the answer's time, needs nothing
// platform-specific; the cost is that the callee's packets arriving during
// the drain, a millisecond or so after the answer, are dropped too.) It
// stops once the socket has been empty for drainIdle, after drainMax
// datagrams, or when stop is called.
func (r *receiver) drain(buf []byte) int {
	n := 0
	for ; n < drainMax; n++ {
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return n
		}
		_ = r.conn.SetReadDeadline(time.Now().Add(drainIdle))
		r.mu.Unlock()
		if _, _, err := r.conn.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
	}
	r.mu.Lock()
	if !r.stopped {
		_ = r.conn.SetReadDeadline(time.Time{})
	}
	r.mu.Unlock()
	return n
}

// stop makes run return (at once, or after the read in progress).
func (r *receiver) stop() {
	r.mu.Lock()
	r.stopped = true
	_ = r.conn.SetReadDeadline(time.Now())
	r.mu.Unlock()
}

// handle takes one datagram that arrived at now from src.
func (r *receiver) handle(p []byte, src netip.AddrPort, now time.Time) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if !r.allow.IsValid() || src.Addr() != r.allow {
		r.foreign++
		return
	}
	if len(p) < rtpHeaderLen || p[0]&0xC0 != rtpVersion2 || !r.pts[p[1]&0x7F] {
		r.garbage++
		return
	}
	ssrc := binary.BigEndian.Uint32(p[8:12])
	seq := binary.BigEndian.Uint16(p[2:4])
	switch {
	case !r.pinned:
		r.pin(src, ssrc)
	case src == r.src && ssrc == r.ssrc:
	default:
		c := &r.cand
		if c.run > 0 && c.src == src && c.ssrc == ssrc && seq == c.seq+1 {
			c.run++
		} else {
			*c = candidate{src: src, ssrc: ssrc, run: 1}
		}
		c.seq = seq
		if c.run < ssrcLearnRun {
			r.stray++
			return
		}
		r.switches++
		r.pin(src, ssrc)
	}
	r.packets++
	r.lastRTP.Store(now.UnixNano())
	if int(p[1]&0x7F) == r.dtmfPT {
		r.event(p, now)
	}
}

// pin makes src and ssrc the callee's stream and sends there from now on.
func (r *receiver) pin(src netip.AddrPort, ssrc uint32) {
	if r.pinned && r.ssrc != ssrc {
		r.anyEvent = false // a new stream's timestamps start anywhere
	}
	r.pinned, r.src, r.ssrc, r.cand = true, src, ssrc, candidate{}
	if src != r.stream.destination() {
		r.stream.setDestination(src)
	}
}

// event handles one RFC 4733 packet. A key press is reported once, on the
// first packet of its event (events are told apart by their RTP timestamp;
// the end packet is repeated three times), whether or not the start packet
// carried the marker bit.
func (r *receiver) event(p []byte, now time.Time) {
	ts, code, ok := parseEvent(p)
	if !ok {
		r.garbage++
		return
	}
	if r.anyEvent && ts == r.lastTS {
		return
	}
	key, ok := eventKey(code)
	if !ok {
		return
	}
	r.anyEvent, r.lastTS = true, ts
	r.keys.offer(queue.KeyPress{Key: key, At: now, Via: "rfc4733"})
}

// parseEvent reads the RTP timestamp and the event code of an RFC 4733
// packet: after the header, its CSRCs and any header extension come the
// event (1 byte), E/R/volume (1 byte) and duration (2 bytes).
func parseEvent(p []byte) (ts uint32, code byte, ok bool) {
	if len(p) < rtpHeaderLen {
		return 0, 0, false
	}
	hl := rtpHeaderLen + 4*int(p[0]&0x0F)
	if p[0]&0x10 != 0 { // header extension
		if len(p) < hl+4 {
			return 0, 0, false
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(p[hl+2:]))
	}
	end := len(p)
	if p[0]&0x20 != 0 { // padding: the last byte counts it
		pad := int(p[len(p)-1])
		if pad == 0 || pad > end-hl {
			return 0, 0, false
		}
		end -= pad
	}
	if end-hl < 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(p[4:8]), p[hl], true
}

// eventKey maps an RFC 4733 DTMF event code to its key.
func eventKey(code byte) (string, bool) {
	const keys = "0123456789*#ABCD"
	if int(code) < len(keys) {
		return keys[code : code+1], true
	}
	return "", false
}

// infoKey parses the body of a SIP INFO key press: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf (the key alone: "5", or
// the event code: "11" for #).
func infoKey(contentType string, body []byte) (string, bool) {
	mt, _, _ := strings.Cut(contentType, ";")
	if strings.EqualFold(strings.TrimSpace(mt), "application/dtmf") {
		return signalKey(string(body))
	}
	for _, line := range strings.FieldsFunc(string(body), func(r rune) bool { return r == '\n' || r == '\r' }) {
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "signal") {
			continue
		}
		return signalKey(value)
	}
	return "", false
}

// signalKey reads a key written as itself ("5", "*", "a") or as its
// RFC 4733 event code ("10" for *, "11" for #, up to "15" for D).
func signalKey(v string) (string, bool) {
	v = strings.ToUpper(strings.TrimSpace(v))
	if len(v) == 1 && strings.Contains("0123456789*#ABCD", v) {
		return v, true
	}
	if len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5' {
		return eventKey(10 + v[1] - '0')
	}
	return "", false
}

// signallingAddr is the IP address the trunk's 200 OK came from, else the
// trunk's host when that is an IP address.
func signallingAddr(ok *sip.Response, t Trunk) netip.Addr {
	if ok != nil {
		if ap, err := netip.ParseAddrPort(ok.Source()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	if a, err := netip.ParseAddr(strings.Trim(t.URI.Host, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}
