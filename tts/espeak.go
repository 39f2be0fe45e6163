package tts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrEspeakNotFound is wrapped by Espeak errors when the espeak-ng binary is missing.
var ErrEspeakNotFound = errors.New("espeak-ng not found")

// ErrUnknownVoice is wrapped by engine errors when the requested voice does not exist.
// Retrying does not help: fix the prompt's voice.
var ErrUnknownVoice = errors.New("unknown voice")

const (
	espeakDefaultTimeout = 30 * time.Second
	espeakMaxOutput      = 64 << 20 // bytes of WAV, about 25 minutes at 22050 Hz
)

// defaultEspeakVoices is the VoiceMap used when Espeak.VoiceMap is nil. espeak-ng 1.51
// (Debian 12, Ubuntu 24.04) reads Chinese characters in the "cmn" voice as pinyin with
// the tone numbers spoken as English digits ("ni three hao three", espeak-ng issues
// #1028 and #1370); its "cmn-latn-pinyin" voice speaks the same characters correctly.
var defaultEspeakVoices = map[string]string{
	"cmn":    "cmn-latn-pinyin",
	"zh":     "cmn-latn-pinyin",
	"zh-cmn": "cmn-latn-pinyin",
	"zh-cn":  "cmn-latn-pinyin",
}

// Espeak is the espeak-ng Engine. It runs `espeak-ng --stdout --stdin -v voice` without a
// shell, passes the text on stdin (so no text can be mistaken for an option), and parses
// the 22050 Hz 16-bit WAV it writes. The zero value is ready to use and it is safe for
// concurrent use.
type Espeak struct {
	// Binary is the espeak-ng executable, looked up in $PATH unless it contains a
	// slash. Empty means "espeak-ng".
	Binary string
	// Speed is the speaking rate in words per minute (espeak-ng -s); 0 keeps the
	// espeak-ng default of 175.
	Speed int
	// Timeout bounds one synthesis in addition to the caller's context; 0 means 30 s.
	Timeout time.Duration
	// VoiceMap rewrites a requested voice (matched case-insensitively) before it is
	// passed to espeak-ng. nil uses the built-in map, which sends "cmn", "zh", "zh-cmn"
	// and "zh-cn" to "cmn-latn-pinyin" to avoid the espeak-ng 1.51 tone-digit bug; an
	// empty non-nil map disables rewriting. If the rewritten voice does not exist the
	// requested one is tried.
	VoiceMap map[string]string
}

// Name returns "espeak-ng".
func (e Espeak) Name() string { return "espeak-ng" }

// Config describes the settings that change the audio (speed and voice map), for the
// Renderer's cache key.
func (e Espeak) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "speed=%d", e.Speed)
	voices := e.voiceMap()
	for _, k := range slices.Sorted(maps.Keys(voices)) {
		fmt.Fprintf(&b, ";%s=%s", k, voices[k])
	}
	return b.String()
}

// Synthesize speaks text in voice (an espeak-ng voice such as "en-us" or "cmn"; empty
// means the espeak-ng default) and returns 16-bit mono PCM and its rate (22050 Hz).
// Errors wrap ErrEspeakNotFound, ErrUnknownVoice or the context's error.
func (e Espeak) Synthesize(ctx context.Context, text, voice string) ([]int16, int, error) {
	return e.synthesize(ctx, text, voice, e.Speed)
}

// SynthesizeRate is Synthesize at rate times Speed (or times espeak-ng's default of 175
// words per minute when Speed is 0).
func (e Espeak) SynthesizeRate(ctx context.Context, text, voice string, rate float64) ([]int16, int, error) {
	base := e.Speed
	if base <= 0 {
		base = espeakDefaultSpeed
	}
	return e.synthesize(ctx, text, voice, max(1, int(math.Round(float64(base)*rate))))
}

// espeakDefaultSpeed is espeak-ng's own default rate in words per minute.
const espeakDefaultSpeed = 175

func (e Espeak) synthesize(ctx context.Context, text, voice string, speed int) ([]int16, int, error) {
	bin := e.Binary
	if bin == "" {
		bin = "espeak-ng"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: install it with `apt-get install -y espeak-ng` or set Espeak.Binary (%w)", ErrEspeakNotFound, err)
	}
	if strings.TrimSpace(text) == "" {
		return nil, 0, errors.New("espeak-ng: empty text: give the prompt some words")
	}
	if voice != strings.TrimSpace(voice) || strings.HasPrefix(voice, "-") || strings.ContainsAny(voice, " \t\r\n") {
		return nil, 0, fmt.Errorf("espeak-ng: %w %q: a voice is one word such as en-us or cmn", ErrUnknownVoice, voice)
	}
	mapped := voice
	if m, ok := e.voiceMap()[strings.ToLower(voice)]; ok {
		mapped = m
	}
	pcm, rate, err := e.run(ctx, path, text, mapped, speed)
	if errors.Is(err, ErrUnknownVoice) && mapped != voice {
		pcm, rate, err = e.run(ctx, path, text, voice, speed)
	}
	return pcm, rate, err
}

func (e Espeak) voiceMap() map[string]string {
	if e.VoiceMap == nil {
		return defaultEspeakVoices
	}
	return e.VoiceMap
}

func (e Espeak) run(parent context.Context, path, text, voice string, speed int) ([]int16, int, error) {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = espeakDefaultTimeout
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()

	args := []string{"--stdout", "--stdin", "-b", "1"}
	if voice != "" {
		args = append(args, "-v", voice)
	}
	if speed > 0 {
		args = append(args, "-s", strconv.Itoa(speed))
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(text)
	stdout := &cappedBuffer{max: espeakMaxOutput}
	stderr := &cappedBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 2 * time.Second // never wait on pipes held open after a kill
	runErr := cmd.Run()

	what := "espeak-ng -v " + voice
	switch {
	case parent.Err() != nil:
		return nil, 0, fmt.Errorf("%s: %w", what, parent.Err())
	case ctx.Err() != nil:
		return nil, 0, fmt.Errorf("%s: no audio after %s for %d bytes of text: raise Espeak.Timeout or shorten the text: %w", what, timeout, len(text), ctx.Err())
	case strings.Contains(stderr.String(), "voice does not exist"):
		return nil, 0, fmt.Errorf("espeak-ng: %w %q: list installed voices with `espeak-ng --voices` (e.g. en-us, cmn)", ErrUnknownVoice, voice)
	case stdout.overflow:
		return nil, 0, fmt.Errorf("%s: more than %d MiB of audio: split the text into shorter prompts", what, espeakMaxOutput>>20)
	case runErr != nil:
		return nil, 0, fmt.Errorf("%s: %w: %s", what, runErr, strings.TrimSpace(stderr.String()))
	}
	pcm, rate, err := parseWAV(stdout.Bytes())
	if err != nil {
		return nil, 0, fmt.Errorf("%s: unreadable output (%d bytes): %w: check that %s is espeak-ng", what, stdout.Len(), err, path)
	}
	if len(pcm) == 0 {
		return nil, 0, fmt.Errorf("%s: no audio for %q: give the prompt words the voice can speak", what, text)
	}
	return pcm, rate, nil
}

// cappedBuffer is a bytes.Buffer that refuses to grow beyond max bytes, so a runaway
// child process cannot exhaust memory.
type cappedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.overflow = true
		return 0, errors.New("output limit exceeded")
	}
	return b.Buffer.Write(p)
}
