package audio

import (
	"encoding/binary"
	"math"
	"testing"
)

// benchWAV builds a 16-bit stereo WAV of secs seconds of a 440 Hz tone at rate.
func benchWAV(rate, secs int) []byte {
	n := rate * secs
	b := make([]byte, 44, 44+4*n)
	copy(b, "RIFF\x00\x00\x00\x00WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 2)
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*4))
	binary.LittleEndian.PutUint16(b[32:], 4)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(4*n))
	for i := range n {
		s := uint16(int16(8000 * math.Sin(2*math.Pi*440*float64(i)/float64(rate))))
		b = binary.LittleEndian.AppendUint16(b, s)
		b = binary.LittleEndian.AppendUint16(b, s)
	}
	return b
}

// BenchmarkPrepare60sStereo44k measures decoding, resampling, trimming and
// normalizing one minute of CD-quality stereo: the cost of a first use of a recording.
func BenchmarkPrepare60sStereo44k(b *testing.B) {
	data := benchWAV(44100, 60)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Prepare(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
