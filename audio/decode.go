package audio

import (
	"bytes"
	"fmt"
	"time"
)

// Format names a container/codec that Decode recognizes.
type Format string

// The formats Decode reads.
const (
	WAV  Format = "wav"
	MP3  Format = "mp3"
	FLAC Format = "flac"
)

// Decoded is decoded audio: mono 16-bit PCM at Rate Hz (channels are averaged).
type Decoded struct {
	Format Format
	PCM    []int16
	Rate   int
	// Channels is the number of channels of the source.
	Channels int
}

// Duration is the playing time of d.
func (d Decoded) Duration() time.Duration {
	if d.Rate <= 0 {
		return 0
	}
	return time.Duration(len(d.PCM)) * time.Second / time.Duration(d.Rate)
}

// Sniff returns the format of data from its first bytes, or an error wrapping
// ErrUnsupported (naming what the data looks like when it can tell).
func Sniff(data []byte) (Format, error) {
	switch {
	case len(data) == 0:
		return "", fmt.Errorf("%w: no bytes", ErrEmpty)
	case len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WAVE":
		return WAV, nil
	case bytes.HasPrefix(data, []byte("fLaC")):
		return FLAC, nil
	case len(data) >= 2 && data[0] == 0xFF && data[1]&0xF6 == 0xF0:
		// An MPEG frame sync with layer bits 00: AAC in ADTS, not MP3.
		return "", fmt.Errorf("%w: AAC (ADTS) is not supported: convert it to WAV, FLAC or MP3", ErrUnsupported)
	case bytes.HasPrefix(data, []byte("ID3")), len(data) >= 2 && data[0] == 0xFF && data[1]&0xE0 == 0xE0:
		return MP3, nil
	case bytes.HasPrefix(data, []byte("OggS")):
		return "", fmt.Errorf("%w: Ogg (Vorbis/Opus) is not supported: convert it to WAV, FLAC or MP3 (e.g. sox in.ogg out.wav)", ErrUnsupported)
	case bytes.HasPrefix(data, []byte("RIFF")):
		return "", fmt.Errorf("%w: a RIFF file that is not WAVE", ErrUnsupported)
	case bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 64)], " \t\r\n"), []byte("<")):
		return "", fmt.Errorf("%w: the data is HTML or XML, not audio (an error page or a login page?)", ErrUnsupported)
	}
	return "", fmt.Errorf("%w: not WAV, MP3 or FLAC (first bytes % x)", ErrUnsupported, data[:min(len(data), 8)])
}

// Decode decodes a WAV, MP3 or FLAC file to mono 16-bit PCM at its own rate. It stops
// with an error wrapping ErrTooLong as soon as the audio exceeds maxDuration (0: no
// limit), so an over-long file costs little work.
func Decode(data []byte, maxDuration time.Duration) (Decoded, error) {
	f, err := Sniff(data)
	if err != nil {
		return Decoded{}, err
	}
	var d Decoded
	switch f {
	case WAV:
		d, err = decodeWAV(data, maxDuration)
	case MP3:
		d, err = decodeMP3(data, maxDuration)
	case FLAC:
		d, err = decodeFLAC(data, maxDuration)
	}
	if err != nil {
		return Decoded{}, fmt.Errorf("%s: %w", f, err)
	}
	d.Format = f
	if len(d.PCM) == 0 {
		return Decoded{}, fmt.Errorf("%s: %w: the file has no samples", f, ErrEmpty)
	}
	return d, nil
}

// limit returns the largest number of samples allowed at rate for maxDuration, or
// -1 for no limit.
func limit(rate int, maxDuration time.Duration) int {
	if maxDuration <= 0 {
		return -1
	}
	return int(int64(rate) * int64(maxDuration) / int64(time.Second))
}

func tooLong(maxDuration time.Duration) error {
	return fmt.Errorf("%w: longer than %s: shorten the recording or raise audio.max_duration", ErrTooLong, maxDuration)
}

// mixer averages interleaved channels into mono int16.
type mixer struct {
	out []int16
	max int // -1: no limit
}

func (m *mixer) add(sum float64, channels int) bool {
	v := sum / float64(channels)
	switch {
	case v > 32767:
		v = 32767
	case v < -32768:
		v = -32768
	}
	m.out = append(m.out, int16(v))
	return m.max < 0 || len(m.out) <= m.max
}
