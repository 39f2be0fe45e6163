package testutil

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// FakeDNS starts a DNS server on a free loopback UDP port that answers every
// name with ip (an A record for an IPv4 address, AAAA for IPv6; the other
// type gets no records), and returns a resolver that asks only it. It
// stands for a public-looking name that resolves, or is rebound, to an
// address of the caller's choosing.
func FakeDNS(t testing.TB, ip netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	want, rdata := uint16(1), ip.AsSlice() // A
	if ip.Is6() {
		want = 28 // AAAA
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			q := buf[12:n]
			end := 0
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			if end+5 > len(q) {
				continue
			}
			question := q[:end+5]
			qtype := binary.BigEndian.Uint16(question[end+1:])
			resp := append([]byte{}, buf[:2]...)        // ID
			resp = append(resp, 0x81, 0x80, 0, 1, 0, 0) // response, RD RA; 1 question, 0 answers
			resp = append(resp, 0, 0, 0, 0)             // no authority, no additional
			resp = append(resp, question...)
			if qtype == want {
				resp[7] = 1                                                    // one answer
				resp = append(resp, 0xc0, 12, byte(want>>8), byte(want), 0, 1) // name pointer, type, IN
				resp = append(resp, 0, 0, 0, 1, 0, byte(len(rdata)))           // TTL 1 s, length
				resp = append(resp, rdata...)
			}
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}
