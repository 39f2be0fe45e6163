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
	// go-mp3 allocates an ID3v2 tag's declared size before reading it: a
	// 10-byte file could make it allocate hundreds of MB. Skip the tags
	// here, checked against the data.
	if b, err = skipID3v2(b); err != nil {
		return Decoded{}, err
	}
	dec, err := mp3.NewDecoder(bytes.NewReader(b))
	if err != nil {
		return Decoded{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	rate := dec.SampleRate()
	if rate <= 0 || rate > MaxRate {
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

// skipID3v2 returns b after the ID3v2 tags at its start, refusing a tag
// whose size is malformed or runs past the end of b.
func skipID3v2(b []byte) ([]byte, error) {
	for range 4 {
		if !bytes.HasPrefix(b, []byte("ID3")) {
			return b, nil
		}
		if len(b) < 10 {
			return nil, fmt.Errorf("%w: ID3 tag header of %d bytes, want 10", ErrCorrupt, len(b))
		}
		var size int
		for _, c := range b[6:10] {
			if c >= 0x80 {
				return nil, fmt.Errorf("%w: ID3 tag size % x is not synchsafe", ErrCorrupt, b[6:10])
			}
			size = size<<7 | int(c)
		}
		size += 10
		if b[5]&0x10 != 0 { // a footer follows the tag
			size += 10
		}
		if size > len(b) {
			return nil, fmt.Errorf("%w: ID3 tag of %d bytes in %d bytes of data", ErrCorrupt, size, len(b))
		}
		b = b[size:]
	}
	if bytes.HasPrefix(b, []byte("ID3")) {
		return nil, fmt.Errorf("%w: more than 4 ID3 tags", ErrCorrupt)
	}
	return b, nil
}
