package tts

import (
	"strings"
	"testing"
	"time"
)

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]Codec{"PCMU": PCMU, "pcmu": PCMU, " PcMa ": PCMA, "PCMA": PCMA} {
		got, err := ParseCodec(in)
		if err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G729", "ulaw", "PCM"} {
		_, err := ParseCodec(in)
		if err == nil || !strings.Contains(err.Error(), "PCMU or PCMA") {
			t.Errorf("ParseCodec(%q): error %v, want one listing PCMU or PCMA", in, err)
		}
	}
}

func TestCodecProperties(t *testing.T) {
	if pt, ok := PCMU.PayloadType(); pt != 0 || !ok {
		t.Errorf("PCMU payload type %d %v", pt, ok)
	}
	if pt, ok := PCMA.PayloadType(); pt != 8 || !ok {
		t.Errorf("PCMA payload type %d %v", pt, ok)
	}
	if _, ok := Codec("G722").PayloadType(); ok {
		t.Error("G722 has a payload type")
	}
	if PCMU.SilenceByte() != 0xFF || PCMA.SilenceByte() != 0xD5 {
		t.Errorf("silence bytes %#x %#x", PCMU.SilenceByte(), PCMA.SilenceByte())
	}
	if !PCMU.Valid() || !PCMA.Valid() || Codec("pcmu").Valid() {
		t.Error("Valid")
	}
}

func TestAudioFrames(t *testing.T) {
	a := &Audio{Codec: PCMU, Payload: make([]byte, 3*FrameBytes)}
	a.Payload[FrameBytes] = 7
	if a.Frames() != 3 || a.Duration() != 60*time.Millisecond {
		t.Errorf("Frames %d, Duration %s", a.Frames(), a.Duration())
	}
	f := a.Frame(1)
	if len(f) != FrameBytes || cap(f) != FrameBytes || f[0] != 7 || &f[0] != &a.Payload[FrameBytes] {
		t.Error("Frame(1) is not the second 160 bytes of Payload, uncopied and capped")
	}
	if FrameDuration*SampleRate/time.Second != FrameBytes {
		t.Error("FrameBytes does not match FrameDuration at SampleRate")
	}
}
