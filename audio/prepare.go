package audio

import (
	"fmt"
	"math"
	"time"

	"github.com/vms-project/vms/tts"
)

// DefaultMaxDuration is the longest recording accepted when Options.MaxDuration is 0.
const DefaultMaxDuration = 120 * time.Second

// Silence trimming: leading and trailing 10 ms blocks quieter than trimThreshold are
// cut, keeping trimMargin of the quiet before the first and after the last sound so
// that word onsets and decays are not clipped.
const (
	trimThreshold = -45.0 // dBFS
	trimBlock     = tts.SampleRate / 100
	trimMargin    = 50 * time.Millisecond
)

// Options says how recordings are prepared.
type Options struct {
	// MaxDuration refuses longer recordings (measured before trimming); 0 means
	// DefaultMaxDuration.
	MaxDuration time.Duration
	// Loudness is the target level in dBFS (gated RMS, see tts.Loudness); 0 means
	// tts.DefaultLoudness. Use the Renderer's level so recorded and synthesized parts
	// play equally loud.
	Loudness float64
}

func (o Options) maxDuration() time.Duration {
	if o.MaxDuration <= 0 {
		return DefaultMaxDuration
	}
	return o.MaxDuration
}

func (o Options) loudness() float64 {
	if o.Loudness == 0 {
		return tts.DefaultLoudness
	}
	return o.Loudness
}

// Version names the preparation (decoders, trimming, resampler and target) in cache
// keys: a prepared clip is cached under the SHA-256 of its recording plus this.
func (o Options) Version() string {
	return fmt.Sprintf("prep/v1/trim%g/%s/max%s/loud%g", trimThreshold, trimMargin, o.maxDuration(), o.loudness())
}

// Info describes a prepared recording.
type Info struct {
	Format   Format
	Rate     int
	Channels int
	// Original is the length of the decoded recording, Trimmed the length played.
	Original, Trimmed time.Duration
	// Loudness is the recording's level before normalization, in dBFS.
	Loudness float64
}

// Prepare decodes a recording and returns it as a clip's PCM: mono, 8 kHz through the
// anti-aliased tts.Resample, leading and trailing silence trimmed, loudness normalized
// to o's target. Errors wrap ErrUnsupported, ErrCorrupt, ErrEmpty (no samples, or only
// silence) or ErrTooLong.
func Prepare(data []byte, o Options) ([]int16, Info, error) {
	d, err := Decode(data, o.maxDuration())
	if err != nil {
		return nil, Info{}, err
	}
	info := Info{Format: d.Format, Rate: d.Rate, Channels: d.Channels, Original: d.Duration()}
	pcm := tts.Resample(d.PCM, d.Rate, tts.SampleRate)
	pcm = trimSilence(pcm)
	level, ok := tts.Loudness(pcm)
	if len(pcm) == 0 || !ok {
		return nil, info, fmt.Errorf("%s: %w: the recording is silent (nothing above %g dBFS): check the file", d.Format, ErrEmpty, trimThreshold)
	}
	info.Loudness = level
	info.Trimmed = time.Duration(len(pcm)) * time.Second / tts.SampleRate
	return tts.NormalizeLoudness(pcm, o.loudness(), 0), info, nil
}

// trimSilence cuts leading and trailing blocks below trimThreshold, keeping trimMargin
// around the sound. All-silent input returns an empty slice.
func trimSilence(pcm []int16) []int16 {
	loud := func(b []int16) bool {
		var sum float64
		for _, s := range b {
			sum += float64(s) * float64(s)
		}
		return 10*math.Log10(sum/float64(len(b))/(32768*32768)+1e-20) > trimThreshold
	}
	first, last := -1, -1
	for off := 0; off < len(pcm); off += trimBlock {
		if loud(pcm[off:min(off+trimBlock, len(pcm))]) {
			if first < 0 {
				first = off
			}
			last = min(off+trimBlock, len(pcm))
		}
	}
	if first < 0 {
		return pcm[:0]
	}
	margin := int(trimMargin * tts.SampleRate / time.Second)
	return pcm[max(0, first-margin):min(len(pcm), last+margin)]
}
