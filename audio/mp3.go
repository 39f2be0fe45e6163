package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hajimehoshi/go-mp3"
)

// decodeMP3 decodes MPEG-1/2 Layer III with github.com/hajimehoshi/go-mp3 (pure Go),
// which always produces 16-bit stereo; the two channels are averaged.
func decodeMP3(b []byte, maxDuration time.Duration) (d Decoded, err error) {
	defer func() {
		// go-mp3 can panic on some malformed streams: a refusal, not a crash.
		if p := recover(); p != nil {
			d, err = Decoded{}, fmt.Errorf("%w: MP3 decoder: %v", ErrCorrupt, p)
		}
	}()
	dec, err := mp3.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return Decoded{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	rate := dec.SampleRate()
	if rate <= 0 {
		return Decoded{}, fmt.Errorf("%w: sample rate %d", ErrCorrupt, rate)
	}
	m := mixer{max: limit(rate, maxDuration)}
	buf := make([]byte, 4*1152)
	var carry []byte
	for {
		n, rerr := dec.Read(buf)
		chunk := append(carry, buf[:n]...)
		whole := len(chunk) / 4 * 4
		for i := 0; i < whole; i += 4 {
			l := int16(binary.LittleEndian.Uint16(chunk[i:]))
			r := int16(binary.LittleEndian.Uint16(chunk[i+2:]))
			if !m.add(float64(l)+float64(r), 2) {
				return Decoded{}, tooLong(maxDuration)
			}
		}
		carry = append(carry[:0], chunk[whole:]...)
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			if len(m.out) > 0 && errors.Is(rerr, io.ErrUnexpectedEOF) {
				break // a truncated last frame: keep what decoded
			}
			return Decoded{}, fmt.Errorf("%w: %v", ErrCorrupt, rerr)
		}
		if n == 0 {
			break
		}
	}
	return Decoded{PCM: m.out, Rate: rate, Channels: 2}, nil
}
