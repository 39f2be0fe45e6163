package telephony

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vms-project/vms/queue"
)

// receiver reads the callee's RTP for one call: it latches the send
// address onto the source of the first valid packet (symmetric RTP, for
// carriers behind NAT), notes when media last arrived (media timeout), and
// turns RFC 4733 telephone-events into key presses. Garbage and unexpected
// payload types are counted and ignored.
type receiver struct {
	conn   *net.UDPConn
	stream *stream
	dtmfPT int // -1 when the answer has no telephone-event
	keys   chan<- queue.KeyPress

	lastRTP  atomic.Int64 // unix nanoseconds of the last valid packet
	packets  int
	garbage  int
	lastTS   uint32 // RTP timestamp of the last event reported
	anyEvent bool
}

const rtpVersion2 = 2 << 6

// run reads until the socket's deadline passes or it closes.
func (r *receiver) run() {
	buf := make([]byte, 1500)
	latched := false
	for {
		n, src, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p := buf[:n]
		if n < rtpHeaderLen || p[0]&0xC0 != rtpVersion2 {
			r.garbage++
			continue
		}
		r.packets++
		r.lastRTP.Store(time.Now().UnixNano())
		if !latched {
			latched = true
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			if src != r.stream.destination() {
				r.stream.setDestination(src)
			}
		}
		pt := int(p[1] & 0x7F)
		if pt == r.dtmfPT {
			r.event(p)
		}
	}
}

// event handles one RFC 4733 packet. A key press is reported once, on the
// first packet of its event (events are told apart by their RTP timestamp;
// the end packet is repeated three times), whether or not the start packet
// carried the marker bit.
func (r *receiver) event(p []byte) {
	hl := rtpHeaderLen + 4*int(p[0]&0x0F)
	if p[0]&0x10 != 0 { // header extension
		if len(p) < hl+4 {
			r.garbage++
			return
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(p[hl+2:]))
	}
	if len(p) < hl+4 {
		r.garbage++
		return
	}
	ts := binary.BigEndian.Uint32(p[4:8])
	if r.anyEvent && ts == r.lastTS {
		return
	}
	key, ok := eventKey(p[hl])
	if !ok {
		return
	}
	r.anyEvent, r.lastTS = true, ts
	select {
	case r.keys <- queue.KeyPress{Key: key, At: time.Now(), Via: "rfc4733"}:
	default: // a flood of keys: the call loop is behind; drop
	}
}

// eventKey maps an RFC 4733 DTMF event code to its key.
func eventKey(code byte) (string, bool) {
	const keys = "0123456789*#ABCD"
	if int(code) < len(keys) {
		return keys[code : code+1], true
	}
	return "", false
}

// infoKey parses an application/dtmf-relay body ("Signal=5\r\nDuration=160").
func infoKey(body []byte) (string, bool) {
	for _, line := range strings.FieldsFunc(string(body), func(r rune) bool { return r == '\n' || r == '\r' }) {
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "signal") {
			continue
		}
		switch v := strings.ToUpper(strings.TrimSpace(value)); v {
		case "10":
			return "*", true
		case "11":
			return "#", true
		default:
			if len(v) == 1 && strings.Contains("0123456789*#ABCD", v) {
				return v, true
			}
		}
	}
	return "", false
}
