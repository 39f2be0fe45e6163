package sim

import (
	"bytes"
	"encoding/binary"
	"maps"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/vms-project/vms/telephony"
)

func TestSimRecorderStats(t *testing.T) {
	te := telephony.FormatTelephoneEvent
	r := newRecorder(telephony.FormatPCMU, &te, false)
	at := time.Unix(0, 0)
	pkt := func(seq uint16, ts uint32, pt uint8, marker bool, payload ...byte) {
		at = at.Add(20 * time.Millisecond)
		r.add(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, PayloadType: pt, Marker: marker, SSRC: 1}, Payload: payload}, at)
	}
	pkt(65534, 0, 0, true, 0xFF, 0x00)
	pkt(65535, 160, 0, false, 0x7F)
	pkt(2, 640, 0, false, 0x80) // 0 and 1 missing, across the wrap
	pkt(1, 480, 0, false, 0x01) // late
	// DTMF "5": start, then three end packets with the same timestamp.
	pkt(3, 800, te.PT, true, 5, 0x0a, 0, 160)
	pkt(4, 800, te.PT, false, 5, 0x8a, 0, 160)
	pkt(5, 800, te.PT, false, 5, 0x8a, 0, 160)
	pkt(6, 800, te.PT, false, 5, 0x8a, 0, 160)
	pkt(7, 960, 8, false, 0xD5) // PCMA from the same source

	st := r.stats
	if st.Packets != 9 || st.SeqGaps != 2 || st.OutOfOrder != 1 || st.Markers != 2 || st.SSRCs != 1 {
		t.Errorf("stats = %+v", st)
	}
	if want := map[uint32]int{160: 3, 480: 1, 0: 3}; !maps.Equal(st.TimestampSteps, want) {
		t.Errorf("timestamp steps = %v, want %v", st.TimestampSteps, want)
	}
	if string(r.digits) != "5" {
		t.Errorf("dtmf = %q, want 5", r.digits)
	}
	if want := []byte{0xFF, 0x00, 0x7F, 0x80, 0x01, 0xD5}; !bytes.Equal(r.payload, want) {
		t.Errorf("payload = % x, want % x", r.payload, want)
	}
	pcm := r.pcm()
	want := append(g711.DecodeUlaw([]byte{0xFF, 0x00, 0x7F, 0x80, 0x01}), g711.DecodeAlaw([]byte{0xD5})...)
	if !bytes.Equal(pcm, want) {
		t.Errorf("pcm = % x, want % x", pcm, want)
	}

	d := newRecorder(telephony.FormatPCMU, nil, true)
	d.add(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0}, Payload: []byte{1, 2}}, at)
	if len(d.payload) != 0 || d.stats.Packets != 1 {
		t.Errorf("discarding recorder kept %d bytes, %d packets", len(d.payload), d.stats.Packets)
	}
}

func TestSimRecorderJitter(t *testing.T) {
	r := newRecorder(telephony.FormatPCMU, nil, false)
	at := time.Unix(0, 0)
	for i := 0; i < 200; i++ {
		arrival := at.Add(time.Duration(i) * 20 * time.Millisecond)
		if i%2 == 1 {
			arrival = arrival.Add(4 * time.Millisecond) // every other packet 4 ms late
		}
		r.add(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 9}}, arrival)
	}
	// |D| is 4 ms on every packet, so J converges to 4 ms.
	if j := r.stats.JitterMS; j < 3.9 || j > 4.01 {
		t.Errorf("jitter = %.3f ms, want about 4", j)
	}
}

func TestSimWAVHeader(t *testing.T) {
	h := wavHeader(320)
	if len(h) != 44 || string(h[:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || string(h[36:40]) != "data" {
		t.Fatalf("header = % x", h)
	}
	u32 := func(o int) uint32 { return binary.LittleEndian.Uint32(h[o:]) }
	u16 := func(o int) uint16 { return binary.LittleEndian.Uint16(h[o:]) }
	if u32(4) != 356 || u16(20) != 1 || u16(22) != 1 || u32(24) != 8000 || u32(28) != 16000 || u16(32) != 2 || u16(34) != 16 || u32(40) != 320 {
		t.Errorf("header fields wrong: % x", h)
	}
}

func TestSimSanitize(t *testing.T) {
	cases := map[string]string{
		"20240101T000000.000_+8613800000000_a84b4c76e66710@pc33.atlanta.com": "20240101T000000.000_+8613800000000_a84b4c76e66710_pc33.atlanta.com",
		"../../etc/passwd": "_.._etc_passwd",
		"":                 "call",
		"...":              "call",
		"a/b\\c d":         "a_b_c_d",
	}
	for in, want := range cases {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := sanitize(string(bytes.Repeat([]byte("x"), 500))); len(got) > 120 {
		t.Errorf("sanitize kept %d characters", len(got))
	}
}
