package audio

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/zaf/g711"

	"github.com/vms-project/vms/tts"
)

// WAV format tags (the fmt chunk's wFormatTag).
const (
	wavPCM        = 1
	wavFloat      = 3
	wavALaw       = 6
	wavMuLaw      = 7
	wavExtensible = 0xFFFE
)

// decodeWAV reads RIFF/WAVE: PCM of 8 (unsigned), 16, 24 or 32 bits, 32/64-bit float,
// A-law and μ-law, at any rate, with any number of channels, plain or
// WAVE_FORMAT_EXTENSIBLE. A data size larger than the file (a streaming header) is
// read to the end of the file.
func decodeWAV(b []byte, maxDuration time.Duration) (Decoded, error) {
	var (
		format, channels, bits, align int
		rate                          int
		haveFmt                       bool
	)
	for id, body := range tts.WAVChunks(b) {
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return Decoded{}, fmt.Errorf("%w: fmt chunk of %d bytes, want at least 16", ErrCorrupt, len(body))
			}
			format = int(binary.LittleEndian.Uint16(body[0:2]))
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			align = int(binary.LittleEndian.Uint16(body[12:14]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
			if format == wavExtensible {
				if len(body) < 26 {
					return Decoded{}, fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes, want 40", ErrCorrupt, len(body))
				}
				format = int(binary.LittleEndian.Uint16(body[24:26])) // sub-format GUID's first field
			}
			if channels < 1 || rate < 1 || rate > MaxRate || bits < 1 {
				return Decoded{}, fmt.Errorf("%w: %d channels, %d Hz, %d bits", ErrCorrupt, channels, rate, bits)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Decoded{}, fmt.Errorf("%w: data chunk before the fmt chunk", ErrCorrupt)
			}
			return wavSamples(body, format, channels, bits, align, rate, maxDuration)
		}
	}
	if !haveFmt {
		return Decoded{}, fmt.Errorf("%w: no fmt chunk", ErrCorrupt)
	}
	return Decoded{}, fmt.Errorf("%w: no data chunk", ErrCorrupt)
}

func wavSamples(data []byte, format, channels, bits, align, rate int, maxDuration time.Duration) (Decoded, error) {
	var width int // bytes per sample
	var sample func([]byte) float64
	switch {
	case format == wavPCM && bits == 8:
		width, sample = 1, func(p []byte) float64 { return (float64(p[0]) - 128) * 256 }
	case format == wavPCM && bits == 16:
		width, sample = 2, func(p []byte) float64 { return float64(int16(binary.LittleEndian.Uint16(p))) }
	case format == wavPCM && bits == 24:
		width, sample = 3, func(p []byte) float64 {
			return float64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24)>>8) / 256
		}
	case format == wavPCM && bits == 32:
		width, sample = 4, func(p []byte) float64 { return float64(int32(binary.LittleEndian.Uint32(p))) / 65536 }
	case format == wavFloat && bits == 32:
		width, sample = 4, func(p []byte) float64 {
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(p))) * 32767
		}
	case format == wavFloat && bits == 64:
		width, sample = 8, func(p []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(p)) * 32767 }
	case format == wavMuLaw && bits == 8:
		width, sample = 1, func(p []byte) float64 { return float64(g711.DecodeUlawFrame(p[0])) }
	case format == wavALaw && bits == 8:
		width, sample = 1, func(p []byte) float64 { return float64(g711.DecodeAlawFrame(p[0])) }
	default:
		return Decoded{}, fmt.Errorf("%w: WAV format tag %d with %d bits per sample: use PCM (8, 16, 24 or 32 bits), float, μ-law or A-law", ErrUnsupported, format, bits)
	}
	frame := width * channels
	if align != 0 && align != frame {
		return Decoded{}, fmt.Errorf("%w: block align %d for %d channels of %d bytes", ErrCorrupt, align, channels, width)
	}
	n := len(data) / frame
	m := mixer{max: limit(rate, maxDuration)}
	m.out = make([]int16, 0, min(n, m.max+1))
	for i := range n {
		var sum float64
		for c := range channels {
			off := i*frame + c*width
			sum += sample(data[off : off+width])
		}
		if !m.add(sum, channels) {
			return Decoded{}, tooLong(maxDuration)
		}
	}
	return Decoded{PCM: m.out, Rate: rate, Channels: channels}, nil
}
