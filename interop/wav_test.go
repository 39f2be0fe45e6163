//go:build linux

package interop

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"time"
)

// wavAudio is a 16-bit PCM WAV file read into memory.
type wavAudio struct {
	Rate     int
	Channels int
	Samples  []int16 // interleaved when Channels > 1
	// Complete is false when the data chunk's size in the header is not
	// (yet) the size of the data: the writer has not closed the file.
	Complete bool
}

// readWAV reads a RIFF/WAVE file of 16-bit PCM samples, walking its chunks
// (writers such as libsndfile add chunks besides "fmt " and "data").
func readWAV(path string) (*wavAudio, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a RIFF/WAVE file", path)
	}
	w := &wavAudio{}
	var bits, format int
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := b[off+8:]
		complete := size > 0 && size <= len(body)
		if !complete && id == "data" {
			size = len(body) // header not yet rewritten at close: take what is there
		}
		size = min(size, len(body))
		body = body[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, fmt.Errorf("%s: fmt chunk of %d bytes", path, size)
			}
			format = int(binary.LittleEndian.Uint16(body[0:2]))
			w.Channels = int(binary.LittleEndian.Uint16(body[2:4]))
			w.Rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			if format != 1 && format != 0xFFFE || bits != 16 || w.Channels < 1 || w.Rate <= 0 {
				return nil, fmt.Errorf("%s: format %d, %d bits, %d channels, %d Hz: want 16-bit PCM", path, format, bits, w.Channels, w.Rate)
			}
			w.Complete = complete
			w.Samples = make([]int16, size/2)
			for i := range w.Samples {
				w.Samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return w, nil
		}
		off += 8 + size + size%2 // chunks are padded to even sizes
	}
	return nil, fmt.Errorf("%s: no data chunk", path)
}

// Duration is the playing time of the samples.
func (w *wavAudio) Duration() time.Duration {
	frames := len(w.Samples) / w.Channels
	return time.Duration(frames) * time.Second / time.Duration(w.Rate)
}

// RMS is the root mean square of the samples, in sample units (full scale
// is 32768; speech from espeak-ng is in the thousands, silence near 0).
func (w *wavAudio) RMS() float64 {
	if len(w.Samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range w.Samples {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(w.Samples)))
}
