package tts

import (
	"fmt"
	"math"
	"testing"
)

// tone returns seconds of a sine at freq Hz sampled at rate with peak amplitude amp.
func tone(freq float64, rate int, seconds, amp float64) []int16 {
	out := make([]int16, int(seconds*float64(rate)))
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// rms is the root mean square of pcm, skipping edge samples at both ends.
func rms(pcm []int16, edge int) float64 {
	var sum float64
	body := pcm[edge : len(pcm)-edge]
	for _, s := range body {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(body)))
}

// goertzelPower is the signal power at freq Hz in pcm (sampled at rate).
func goertzelPower(pcm []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// zeroCrossingFreq estimates the frequency of a pure tone from its rising zero crossings,
// interpolating each crossing between samples.
func zeroCrossingFreq(pcm []int16, rate int) float64 {
	var first, last float64
	n := 0
	for i := 1; i < len(pcm); i++ {
		a, b := float64(pcm[i-1]), float64(pcm[i])
		if a < 0 && b >= 0 {
			t := float64(i-1) + a/(a-b)
			if n == 0 {
				first = t
			}
			last = t
			n++
		}
	}
	return float64(n-1) * float64(rate) / (last - first)
}

func db(ratio float64) float64 { return 20 * math.Log10(ratio) }

func TestResampleKeepsPassbandTone(t *testing.T) {
	const amp = 10000.0
	for _, from := range []int{22050, 44100, 48000, 16000, 11025} {
		for _, freq := range []float64{1000, 3000, 3400} {
			t.Run(fmt.Sprintf("%gHz_from_%d", freq, from), func(t *testing.T) {
				in := tone(freq, from, 1, amp)
				out := Resample(in, from, SampleRate)
				if want := (len(in)*SampleRate + from - 1) / from; len(out) != want {
					t.Fatalf("len(out) = %d, want %d", len(out), want)
				}
				edge := SampleRate / 10 // 100 ms away from the zero-padded ends
				level := db(rms(out, edge) / rms(in, from/10))
				body := out[edge : len(out)-edge]
				got := zeroCrossingFreq(body, SampleRate)
				t.Logf("level %+.4f dB, frequency %.3f Hz", level, got)
				if math.Abs(level) > 0.5 {
					t.Errorf("level changed by %+.3f dB, want within ±0.5 dB", level)
				}
				if math.Abs(got-freq) > freq*0.001 {
					t.Errorf("frequency = %.3f Hz, want %g Hz", got, freq)
				}
				// The tone must dominate: Goertzel at freq vs at freq ± 250 Hz.
				p := goertzelPower(body, freq, SampleRate)
				for _, off := range []float64{-250, 250} {
					if q := goertzelPower(body, freq+off, SampleRate); p < 1e4*q {
						t.Errorf("power at %g Hz only %.1f dB above %g Hz", freq, 10*math.Log10(p/q), freq+off)
					}
				}
			})
		}
	}
}

func TestResampleRejectsAboveNyquist(t *testing.T) {
	const amp = 10000.0
	for _, from := range []int{22050, 44100, 48000} {
		for _, freq := range []float64{4500, 6000, 9000} {
			if freq >= float64(from)/2 {
				continue
			}
			t.Run(fmt.Sprintf("%gHz_from_%d", freq, from), func(t *testing.T) {
				in := tone(freq, from, 1, amp)
				inRMS := rms(in, from/10)
				att := db(rms(Resample(in, from, SampleRate), SampleRate/10) / inRMS)
				// The int16 output usually rounds to silence (-Inf dB); the unrounded
				// filter output shows the real stopband attenuation.
				f := newResampler(from, SampleRate).runFloat(in)
				var sum float64
				body := f[SampleRate/10 : len(f)-SampleRate/10]
				for _, v := range body {
					sum += float64(v) * float64(v)
				}
				floatAtt := db(math.Sqrt(sum/float64(len(body))) / inRMS)
				t.Logf("attenuation %.1f dB (int16 output), %.1f dB (unrounded)", att, floatAtt)
				if att > -50 || floatAtt > -50 {
					t.Errorf("%g Hz from %d Hz attenuated only %.1f dB (%.1f unrounded), want <= -50 dB", freq, from, att, floatAtt)
				}
			})
		}
	}
}

func TestResampleUpsample(t *testing.T) {
	in := tone(1000, SampleRate, 1, 10000)
	out := Resample(in, SampleRate, 22050)
	if want := 22050; len(out) != want {
		t.Fatalf("len = %d, want %d", len(out), want)
	}
	level := db(rms(out, 2205) / rms(in, 800))
	if math.Abs(level) > 0.5 {
		t.Errorf("level %+.3f dB after 8000→22050", level)
	}
	if f := zeroCrossingFreq(out[2205:len(out)-2205], 22050); math.Abs(f-1000) > 1 {
		t.Errorf("frequency %.3f Hz after 8000→22050", f)
	}
}

func TestResampleAwkwardRatio(t *testing.T) {
	// 44101/8000 needs more phases than the table holds: positions are rounded.
	in := tone(1000, 44101, 1, 10000)
	out := Resample(in, 44101, SampleRate)
	level := db(rms(out, 800) / rms(in, 4410))
	if math.Abs(level) > 0.5 {
		t.Errorf("level %+.3f dB", level)
	}
	if f := zeroCrossingFreq(out[800:len(out)-800], SampleRate); math.Abs(f-1000) > 1 {
		t.Errorf("frequency %.3f Hz", f)
	}
}

func TestResampleEdgeCases(t *testing.T) {
	if got := Resample([]int16{1, 2, 3}, 8000, 8000); len(got) != 3 || got[2] != 3 {
		t.Errorf("equal rates: %v", got)
	}
	if got := Resample(nil, 22050, 8000); got == nil || len(got) != 0 {
		t.Errorf("empty input: %v", got)
	}
	if got := Resample([]int16{1}, 0, 8000); got != nil {
		t.Errorf("zero rate: %v, want nil", got)
	}
	// Full-scale DC must clip cleanly, not wrap around.
	dc := make([]int16, 22050)
	for i := range dc {
		dc[i] = math.MaxInt16
	}
	out := Resample(dc, 22050, 8000)
	for i := 1000; i < 7000; i++ {
		if out[i] < 32000 {
			t.Fatalf("full-scale DC sample %d = %d", i, out[i])
		}
	}
}
