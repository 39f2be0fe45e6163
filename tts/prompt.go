package tts

import (
	"fmt"
	"strings"
	"time"
)

// Limits on a Prompt, so a bad request cannot make a worker build minutes of audio.
const (
	// MaxRepeat is the largest Prompt.Repeat accepted.
	MaxRepeat = 20
	// MaxPause is the longest Prompt.Pause accepted.
	MaxPause = time.Minute
)

// Prompt is what to say: Text in Voice (an engine voice such as espeak-ng's "en-us" or
// "cmn"; empty means the engine's default), played Repeat times (0 counts as 1) with
// Pause of silence between repetitions and none after the last.
type Prompt struct {
	Text   string
	Voice  string
	Repeat int
	Pause  time.Duration
}

// plan validates p and returns its trimmed text, repetitions and pause in samples.
func (p Prompt) plan() (text string, repeat, pauseSamples int, err error) {
	text = strings.TrimSpace(p.Text)
	if text == "" {
		return "", 0, 0, fmt.Errorf("tts: empty prompt text: give the prompt something to say")
	}
	repeat = p.Repeat
	if repeat == 0 {
		repeat = 1
	}
	if repeat < 1 || repeat > MaxRepeat {
		return "", 0, 0, fmt.Errorf("tts: prompt repeat %d out of range: use 1 to %d", p.Repeat, MaxRepeat)
	}
	if p.Pause < 0 || p.Pause > MaxPause {
		return "", 0, 0, fmt.Errorf("tts: prompt pause %s out of range: use 0 to %s", p.Pause, MaxPause)
	}
	pauseSamples = int(p.Pause * SampleRate / time.Second)
	return text, repeat, pauseSamples, nil
}
