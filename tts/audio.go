package tts

import "time"

// Audio is ready-to-send G.711: len(Payload) is a multiple of FrameBytes and the last
// frame is padded with the codec's silence byte (0xFF PCMU, 0xD5 PCMA). An Audio
// returned by a Renderer is shared between calls and must be treated as read-only.
type Audio struct {
	Codec   Codec
	Payload []byte
}

// Frames returns the number of 20 ms frames in a.
func (a *Audio) Frames() int { return len(a.Payload) / FrameBytes }

// Frame returns frame i (0 <= i < Frames()) as a sub-slice of Payload, without copying.
// The caller must not modify it.
func (a *Audio) Frame(i int) []byte {
	off := i * FrameBytes
	return a.Payload[off : off+FrameBytes : off+FrameBytes]
}

// Duration returns the playing time of a: Frames() × FrameDuration.
func (a *Audio) Duration() time.Duration { return time.Duration(a.Frames()) * FrameDuration }
