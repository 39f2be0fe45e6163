package tts

import (
	"math"
	"testing"
)

func TestG711RoundTrip(t *testing.T) {
	for _, codec := range []Codec{PCMU, PCMA} {
		// Every 16-bit value comes back within half a quantization step: the step grows
		// with the magnitude, about 1/16 of it at worst.
		pcm := make([]int16, 0, 65536)
		for v := math.MinInt16; v <= math.MaxInt16; v++ {
			pcm = append(pcm, int16(v))
		}
		back := Decode(Encode(pcm, codec), codec)
		if len(back) != len(pcm) {
			t.Fatalf("%s: %d samples back, want %d", codec, len(back), len(pcm))
		}
		for i, v := range pcm {
			if d := math.Abs(float64(back[i]) - float64(v)); d > math.Abs(float64(v))/16+16 {
				t.Fatalf("%s: %d decodes as %d", codec, v, back[i])
			}
		}
		// A speech-level tone keeps the ~38 dB SNR that G.711 promises.
		in := tone(1000, SampleRate, 1, 8000)
		out := Decode(Encode(in, codec), codec)
		var sig, noise float64
		for i := range in {
			sig += float64(in[i]) * float64(in[i])
			d := float64(out[i]) - float64(in[i])
			noise += d * d
		}
		snr := 10 * math.Log10(sig/noise)
		t.Logf("%s: SNR %.1f dB", codec, snr)
		if snr < 35 {
			t.Errorf("%s: SNR %.1f dB, want >= 35", codec, snr)
		}
	}
}

func TestG711Silence(t *testing.T) {
	for _, codec := range []Codec{PCMU, PCMA} {
		enc := Encode(make([]int16, 4), codec)
		for _, b := range enc {
			if b != codec.SilenceByte() {
				t.Errorf("%s: zero encodes as %#x, want %#x", codec, b, codec.SilenceByte())
			}
		}
		if v := Decode([]byte{codec.SilenceByte()}, codec)[0]; v < -8 || v > 8 {
			t.Errorf("%s: silence byte decodes as %d", codec, v)
		}
	}
	if Encode([]int16{1}, "G722") != nil || Decode([]byte{1}, "G722") != nil {
		t.Error("an invalid codec did not return nil")
	}
}
