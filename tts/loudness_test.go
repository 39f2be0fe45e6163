package tts

import (
	"math"
	"testing"
)

func TestLoudnessOfTones(t *testing.T) {
	// A sine of amplitude A has RMS A/√2: full scale is -3.01 dBFS.
	for _, amp := range []float64{32767, 3277, 328} {
		got, ok := Loudness(tone(1000, SampleRate, 1, amp))
		want := 20 * math.Log10(amp/math.Sqrt2/32768)
		if !ok || math.Abs(got-want) > 0.05 {
			t.Errorf("amplitude %.0f: %.2f dBFS (ok %v), want %.2f", amp, got, ok, want)
		}
	}
	if _, ok := Loudness(make([]int16, SampleRate)); ok {
		t.Error("silence has a loudness")
	}
}

func TestLoudnessIgnoresPauses(t *testing.T) {
	// Speech-like: one second of tone, then two seconds of near-silence. The pauses
	// must not pull the level down (an ungated RMS would read 4.8 dB lower).
	sig := append(tone(500, SampleRate, 1, 3000), make([]int16, 2*SampleRate)...)
	for i := SampleRate; i < len(sig); i += 7 {
		sig[i] = 3 // a little noise far below the gate
	}
	got, _ := Loudness(sig)
	want, _ := Loudness(tone(500, SampleRate, 1, 3000))
	if math.Abs(got-want) > 0.1 {
		t.Errorf("tone with pauses %.2f dBFS, tone alone %.2f", got, want)
	}
}

func TestNormalizeLoudness(t *testing.T) {
	for _, amp := range []float64{300, 3000, 20000} {
		for _, vol := range []float64{0, -6, 3} {
			out := NormalizeLoudness(tone(800, SampleRate, 1, amp), -20, vol)
			got, _ := Loudness(out)
			if math.Abs(got-(-20+vol)) > 0.1 {
				t.Errorf("amplitude %.0f volume %g: %.2f dBFS, want %.1f", amp, vol, got, -20+vol)
			}
		}
	}
	// A target that would clip is limited to a -1 dBFS peak.
	out := NormalizeLoudness(tone(800, SampleRate, 1, 1000), 0, 0)
	var peak int16
	for _, s := range out {
		peak = max(peak, s)
	}
	if limit := int16(32768 * math.Pow(10, -1.0/20)); peak > limit+1 || peak < limit-40 {
		t.Errorf("peak %d, want about %d", peak, limit)
	}
}
