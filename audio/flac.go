package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mewkiz/flac"
)

// decodeFLAC decodes FLAC with github.com/mewkiz/flac (pure Go): any rate, 4 to 32
// bits per sample, 1 to 8 channels (averaged to mono).
func decodeFLAC(b []byte, maxDuration time.Duration) (d Decoded, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = Decoded{}, fmt.Errorf("%w: FLAC decoder: %v", ErrCorrupt, p)
		}
	}()
	stream, err := flac.New(bytes.NewReader(b))
	if err != nil {
		return Decoded{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer stream.Close()
	info := stream.Info
	rate, channels, bits := int(info.SampleRate), int(info.NChannels), int(info.BitsPerSample)
	if rate <= 0 || rate > MaxRate || channels < 1 || bits < 4 || bits > 32 {
		return Decoded{}, fmt.Errorf("%w: %d Hz, %d channels, %d bits", ErrCorrupt, rate, channels, bits)
	}
	scale := 1.0
	if bits > 16 {
		scale = 1 / float64(int(1)<<(bits-16))
	} else if bits < 16 {
		scale = float64(int(1) << (16 - bits))
	}
	m := mixer{max: limit(rate, maxDuration)}
	for {
		frame, err := stream.ParseNext()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Decoded{}, fmt.Errorf("%w: frame after %d samples: %v", ErrCorrupt, len(m.out), err)
		}
		if len(frame.Subframes) != channels {
			return Decoded{}, fmt.Errorf("%w: frame with %d channels in a %d-channel stream", ErrCorrupt, len(frame.Subframes), channels)
		}
		for i := range int(frame.BlockSize) {
			var sum float64
			for _, sf := range frame.Subframes {
				if i >= len(sf.Samples) {
					return Decoded{}, fmt.Errorf("%w: short subframe", ErrCorrupt)
				}
				sum += float64(sf.Samples[i]) * scale
			}
			if !m.add(sum, channels) {
				return Decoded{}, tooLong(maxDuration)
			}
		}
	}
	return Decoded{PCM: m.out, Rate: rate, Channels: channels}, nil
}
