package tts

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Limits on a Prompt, so a bad request cannot make a worker build minutes of audio.
const (
	// MaxRepeat is the largest Prompt.Repeat accepted.
	MaxRepeat = 20
	// MaxPause is the longest Prompt.Pause (and Prompt.Gap) accepted.
	MaxPause = time.Minute
	// MaxSegments is the largest number of segments in one Prompt.
	MaxSegments = 32
	// MinRate and MaxRate bound Segment.Rate (1 is the engine's normal speed).
	MinRate, MaxRate = 0.5, 2.0
	// MinVolume and MaxVolume bound Segment.Volume, in dB relative to the loudness
	// target.
	MinVolume, MaxVolume = -20.0, 10.0
)

// Prompt is what to say: either Text in Voice (an engine voice such as espeak-ng's
// "en-us" or "cmn"; empty means the engine's default), or, when Segments is not empty,
// the segments one after the other with Gap of silence between them. The whole is
// played Repeat times (0 counts as 1) with Pause of silence between repetitions and
// none after the last.
type Prompt struct {
	Text     string
	Voice    string
	Segments []Segment
	Gap      time.Duration
	Repeat   int
	Pause    time.Duration
}

// Segment is one part of a Prompt: speech (Text) or, when Clip is set, recorded audio.
type Segment struct {
	// Text is spoken by Engine in Voice at Rate.
	Text  string
	Voice string
	// Engine names a registered engine (see WithEngine); empty means the default.
	Engine string
	// Rate is the speaking speed relative to the engine's normal one: 0 or 1 is
	// normal, 0.5 half as fast, 2 twice as fast. Ignored for clips.
	Rate float64
	// Volume is added to the loudness target, in dB (0: play at the target level).
	Volume float64
	// Clip is recorded audio to play instead of speech.
	Clip *Clip
}

// Clip is recorded audio, 16-bit mono PCM at SampleRate, already trimmed and
// loudness-normalized (package audio prepares it). Key is its content address: two
// clips with the same Key must have the same PCM.
type Clip struct {
	Key string
	PCM []int16
}

// segments returns p's segments: Segments, or one segment of Text in Voice.
func (p Prompt) segments() []Segment {
	if len(p.Segments) > 0 {
		return p.Segments
	}
	return []Segment{{Text: p.Text, Voice: p.Voice}}
}

// plan validates p and returns its segments (texts trimmed, rates defaulted),
// repetitions, pause and gap in samples.
func (p Prompt) plan() (segs []Segment, repeat, pauseSamples, gapSamples int, err error) {
	in := p.segments()
	if len(in) > MaxSegments {
		return nil, 0, 0, 0, fmt.Errorf("tts: prompt has %d segments: at most %d are allowed", len(in), MaxSegments)
	}
	for i, s := range in {
		if s.Clip != nil {
			if len(s.Clip.PCM) == 0 || s.Clip.Key == "" {
				return nil, 0, 0, 0, fmt.Errorf("tts: segment %d: empty clip: prepare it with package audio", i+1)
			}
		} else {
			s.Text = strings.TrimSpace(s.Text)
			if s.Text == "" {
				if len(in) == 1 {
					return nil, 0, 0, 0, fmt.Errorf("tts: empty prompt text: give the prompt something to say")
				}
				return nil, 0, 0, 0, fmt.Errorf("tts: segment %d: empty text: give it something to say", i+1)
			}
		}
		if s.Rate == 0 {
			s.Rate = 1
		}
		if math.IsNaN(s.Rate) || s.Rate < MinRate || s.Rate > MaxRate {
			return nil, 0, 0, 0, fmt.Errorf("tts: segment %d: rate %g out of range: use %g to %g (1 is normal)", i+1, s.Rate, MinRate, MaxRate)
		}
		if math.IsNaN(s.Volume) || s.Volume < MinVolume || s.Volume > MaxVolume {
			return nil, 0, 0, 0, fmt.Errorf("tts: segment %d: volume %g dB out of range: use %g to %g", i+1, s.Volume, MinVolume, MaxVolume)
		}
		segs = append(segs, s)
	}
	repeat = p.Repeat
	if repeat == 0 {
		repeat = 1
	}
	if repeat < 1 || repeat > MaxRepeat {
		return nil, 0, 0, 0, fmt.Errorf("tts: prompt repeat %d out of range: use 1 to %d", p.Repeat, MaxRepeat)
	}
	if p.Pause < 0 || p.Pause > MaxPause {
		return nil, 0, 0, 0, fmt.Errorf("tts: prompt pause %s out of range: use 0 to %s", p.Pause, MaxPause)
	}
	if p.Gap < 0 || p.Gap > MaxPause {
		return nil, 0, 0, 0, fmt.Errorf("tts: prompt gap %s out of range: use 0 to %s", p.Gap, MaxPause)
	}
	pauseSamples = int(p.Pause * SampleRate / time.Second)
	gapSamples = int(p.Gap * SampleRate / time.Second)
	return segs, repeat, pauseSamples, gapSamples, nil
}
