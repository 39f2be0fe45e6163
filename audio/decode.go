package audio

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/vms-project/vms/tts"
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
	if err := checkRate(d.Rate); err != nil {
		return Decoded{}, fmt.Errorf("%s: %w", f, err)
	}
	if len(d.PCM) == 0 {
		return Decoded{}, fmt.Errorf("%s: %w: the file has no samples", f, ErrEmpty)
	}
	return d, nil
}

// Bounds of what Decode accepts and produces, whatever a file's header says.
const (
	// MaxRate is the highest sample rate accepted.
	MaxRate = 384000
	// MaxSamples is the most (mono) samples Decode returns, whatever
	// maxDuration allows: 64 MiB of PCM, e.g. 11 minutes at 48 kHz.
	MaxSamples = 1 << 25
)

// maxResampleCoefs bounds the filter table tts.Resample builds to bring a rate
// to 8 kHz: about phases (8000/gcd(rate, 8000), at most 4096) × taps (about
// rate/78 above 8 kHz). Every usual rate needs well under 100k; an odd one
// such as 383999 Hz would need 20M (80 MB and most of a second for a few
// samples), so a header naming such a rate is refused.
const maxResampleCoefs = 1 << 20

// checkRate refuses a sample rate that is out of range, or that would make
// resampling to 8 kHz costly.
func checkRate(rate int) error {
	if rate < 1 || rate > MaxRate {
		return fmt.Errorf("%w: sample rate %d Hz (1 to %d)", ErrCorrupt, rate, MaxRate)
	}
	const to = tts.SampleRate
	if rate == to {
		return nil
	}
	a, b := rate, to
	for b != 0 {
		a, b = b, a%b
	}
	phases := min(to/a, 4096)
	fc := 0.47 * float64(min(rate, to)) / float64(rate)
	taps := 2 * (int(math.Ceil(48/(2*fc))) + 1)
	if phases*taps > maxResampleCoefs {
		return fmt.Errorf("%w: sample rate %d Hz: use a usual rate (8000, 16000, 22050, 44100, 48000 Hz...)", ErrUnsupported, rate)
	}
	return nil
}

// limit returns the largest number of samples allowed at rate for maxDuration (0:
// no limit), at most MaxSamples.
func limit(rate int, maxDuration time.Duration) int {
	if maxDuration <= 0 {
		return MaxSamples
	}
	return int(min(int64(rate)*int64(maxDuration)/int64(time.Second), MaxSamples))
}

func tooLong(maxDuration time.Duration) error {
	if maxDuration <= 0 {
		return fmt.Errorf("%w: more than %d samples: shorten the recording", ErrTooLong, MaxSamples)
	}
	return fmt.Errorf("%w: longer than %s (or more than %d samples): shorten the recording or raise audio.max_duration", ErrTooLong, maxDuration, MaxSamples)
}

// mixer averages interleaved channels into mono int16.
type mixer struct {
	out []int16
	max int // samples allowed (limit)
}

func (m *mixer) add(sum float64, channels int) bool {
	v := sum / float64(channels)
	switch {
	case v > 32767:
		v = 32767
	case v < -32768:
		v = -32768
	case v != v: // NaN (a float WAV can hold one)
		v = 0
	}
	m.out = append(m.out, int16(v))
	return len(m.out) <= m.max
}
