package telephony

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fuzzSources are where FuzzReceiverPackets' datagrams come from, chosen
// by the low two bits of each datagram's first byte.
var fuzzSources = [4]netip.AddrPort{
	callee,                              // the answer's address
	netip.AddrPortFrom(calleeIP, 30002), // the answer's address, another port
	elsewhere,                           // another host
	netip.MustParseAddrPort("[::ffff:192.0.2.7]:30004"), // the answer's address, IPv4-mapped
}

// fuzzDatagrams splits data into datagrams: a source byte, a length byte,
// then that many bytes (or what is left).
func fuzzDatagrams(data []byte, each func(src netip.AddrPort, p []byte)) {
	for len(data) >= 2 {
		src, n := fuzzSources[data[0]&3], int(data[1])
		data = data[2:]
		n = min(n, len(data))
		each(src, data[:n])
		data = data[n:]
	}
}

const dtmfKeys = "0123456789*#ABCD"

// FuzzReceiverPackets feeds datagrams from the callee's address and from
// another host into the receiver's packet handling. Whatever they hold,
// another host's datagrams change nothing, the send address only ever moves
// to the accepted IP address, only datagrams from it count, and no more than
// maxKeysPerCall keys come out, each a DTMF key.
func FuzzReceiverPackets(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, s := testReceiver(calleeIP)
		now := time.Unix(1e9, 0)
		fromCallee := 0
		fuzzDatagrams(data, func(src netip.AddrPort, p []byte) {
			type state struct {
				packets, foreign int
				pinned           bool
				src, dst         netip.AddrPort
				ssrc             uint32
				cand             candidate
				last             int64
			}
			snap := func() state {
				return state{r.packets, r.foreign, r.pinned, r.src, s.destination(), r.ssrc, r.cand, r.lastRTP.Load()}
			}
			before := snap()
			r.handle(p, src, now)
			if src.Addr().Unmap() != calleeIP {
				before.foreign++
				if snap() != before {
					t.Fatalf("a datagram from another host changed the receiver")
				}
				return
			}
			fromCallee++
			if d := s.destination(); d != calleeSDP && d.Addr() != calleeIP {
				t.Fatalf("send address moved to %s", d)
			}
			if r.packets > fromCallee {
				t.Fatalf("%d packets accepted of %d from the callee", r.packets, fromCallee)
			}
		})
		if fromCallee == 0 && (r.packets != 0 || r.pinned || s.destination() != calleeSDP || r.lastRTP.Load() != 0) {
			t.Fatal("latched or counted with nothing from the callee")
		}
		keys := keysIn(r.keys)
		if len(keys) > maxKeysPerCall || len(keys) > r.packets {
			t.Fatalf("%d keys from %d packets", len(keys), r.packets)
		}
		if strings.Trim(keys, dtmfKeys) != "" {
			t.Fatalf("keys %q", keys)
		}
	})
}

// FuzzRFC4733Event feeds RFC 4733 packets (version 2, the answer's
// telephone-event payload type, anything else as it comes: CSRCs, header
// extension, padding, payload) from the pinned callee to the receiver. At
// most one key comes out of one packet, only when parseEvent found an event
// inside the packet, and it is the key of its code.
func FuzzRFC4733Event(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) >= 2 {
			p[0] = rtpVersion2 | p[0]&0x3F
			p[1] = p[1]&0x80 | FormatTelephoneEvent.PT
		}
		ts, code, ok := parseEvent(p)
		if ok {
			hl := rtpHeaderLen + 4*int(p[0]&0x0F)
			if len(p) < hl+4 {
				t.Fatalf("event found in a packet of %d bytes with a %d-byte header", len(p), hl)
			}
		}
		r, _ := testReceiver(calleeIP)
		r.handle(p, callee, time.Unix(1e9, 0))
		keys := keysIn(r.keys)
		want, wantOK := eventKey(code)
		switch {
		case len(keys) > 1:
			t.Fatalf("keys %q from one packet", keys)
		case len(keys) == 1 && (!ok || !wantOK || keys != want):
			t.Fatalf("key %q from code %d (event found %v, ts %d)", keys, code, ok, ts)
		case len(keys) == 0 && ok && wantOK && len(p) >= rtpHeaderLen:
			t.Fatalf("event %d (%s) found but no key", code, want)
		}
	})
}

// FuzzInfoKey feeds SIP INFO bodies (application/dtmf-relay and
// application/dtmf) to infoKey: a key comes out only as one DTMF key, and
// the same input always gives the same answer.
func FuzzInfoKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		key, ok := infoKey(contentType, body)
		if ok != (key != "") || (ok && (len(key) != 1 || !strings.Contains(dtmfKeys, key))) {
			t.Fatalf("infoKey(%q, %q) = %q, %v", contentType, body, key, ok)
		}
		if again, ok2 := infoKey(contentType, body); again != key || ok2 != ok {
			t.Fatal("infoKey is not deterministic")
		}
		mt, _, _ := strings.Cut(contentType, ";")
		relay := !strings.EqualFold(strings.TrimSpace(mt), "application/dtmf")
		if ok && relay && !strings.Contains(strings.ToLower(string(body)), "signal") {
			t.Fatalf("key %q from a dtmf-relay body without Signal: %q", key, body)
		}
	})
}
