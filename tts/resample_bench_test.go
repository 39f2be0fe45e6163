package tts

import (
	"fmt"
	"testing"
)

// BenchmarkResample converts one second of audio to 8 kHz, filter design included.
func BenchmarkResample(b *testing.B) {
	for _, from := range []int{22050, 44100, 48000} {
		in := tone(1000, from, 1, 10000)
		b.Run(fmt.Sprintf("%d_to_8000_1s", from), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Resample(in, from, SampleRate)
			}
		})
	}
}
