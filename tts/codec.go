package tts

import (
	"fmt"
	"strings"
	"time"
)

// Codec names a G.711 variant as it appears in SDP (rtpmap encoding name).
type Codec string

// The two G.711 codecs every SIP trunk supports.
const (
	// PCMU is G.711 µ-law, RTP static payload type 0.
	PCMU Codec = "PCMU"
	// PCMA is G.711 A-law, RTP static payload type 8.
	PCMA Codec = "PCMA"
)

// SampleRate is the G.711 sample rate in Hz.
const SampleRate = 8000

// FrameBytes is the size of one 20 ms G.711 frame: 160 samples of one byte each.
const FrameBytes = 160

// FrameDuration is the playing time of one frame of FrameBytes.
const FrameDuration = 20 * time.Millisecond

// ParseCodec returns the Codec named by s, ignoring case and surrounding space
// ("pcmu", "PCMA"). Any other name is an error that lists the valid values.
func ParseCodec(s string) (Codec, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case string(PCMU):
		return PCMU, nil
	case string(PCMA):
		return PCMA, nil
	}
	return "", fmt.Errorf("tts: unknown codec %q: use PCMU or PCMA", s)
}

// Valid reports whether c is PCMU or PCMA.
func (c Codec) Valid() bool { return c == PCMU || c == PCMA }

// PayloadType returns the static RTP payload type of c (0 for PCMU, 8 for PCMA) and
// false for an invalid codec.
func (c Codec) PayloadType() (uint8, bool) {
	switch c {
	case PCMU:
		return 0, true
	case PCMA:
		return 8, true
	}
	return 0, false
}

// SilenceByte returns the byte that encodes a zero sample in c: 0xFF for PCMU and
// 0xD5 for PCMA. It returns 0 for an invalid codec.
func (c Codec) SilenceByte() byte {
	switch c {
	case PCMU:
		return 0xFF
	case PCMA:
		return 0xD5
	}
	return 0
}
