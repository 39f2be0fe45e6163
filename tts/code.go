package tts

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vms-project/vms/tts/normalize"
)

// The layout of a verification-code prompt (see Renderer.RenderCode). Every clip (the
// prefix, each digit) is trimmed of the silence at its ends but for 10 ms before and
// 30 ms after the speech, and padded to a whole frame, so the silence heard between two
// clips is the gap plus about 50 ms.
const (
	// DigitGap is the silence inserted between two digits: about 200 ms are heard, what
	// a person reading a code digit by digit ("four, eight, two, one") leaves.
	DigitGap = 160 * time.Millisecond
	// PrefixGap is the silence inserted between the prefix and the first digit (about
	// 400 ms heard).
	PrefixGap = 360 * time.Millisecond
	// MaxCodeDigits is the longest code RenderCode accepts.
	MaxCodeDigits = 32
)

// Trimming of code clips: samples quieter than codeTrimLevel (about -50 dBFS, far
// below speech normalized to DefaultLoudness) at either end are silence; codeTrimLead
// and codeTrimTail of it are kept so soft onsets and decays are not cut.
const (
	codeTrimLevel   = 100
	codeTrimLead    = SampleRate / 100 // 10 ms
	codeTrimTail    = SampleRate / 33  // 30 ms
	codeClipVersion = "vms-tts-code-clip/v1"
)

// Code is a verification-code prompt: Prefix, then each digit of Digits spoken on its
// own in Language, in Voice with Engine (empty: the default engine), the whole played
// Repeat times (0 counts as 1) with Pause of silence between repetitions.
type Code struct {
	Prefix   string
	Digits   string
	Language string
	Voice    string
	Engine   string
	Repeat   int
	Pause    time.Duration
}

// DigitText returns what is said for the digit d in language: the words package
// normalize reads codes with (Chinese: 零 幺 二 … 九; English: zero … nine), or, in
// other languages, the digit itself for the voice to read.
func DigitText(d rune, language string) string {
	if d < '0' || d > '9' {
		return ""
	}
	l := strings.ToLower(language)
	if normalize.Chinese(l) || l == "en" || strings.HasPrefix(l, "en-") || strings.HasPrefix(l, "en_") {
		w, _ := normalize.Value(string(d), normalize.Digits, language)
		return w
	}
	return string(d)
}

// RenderCode returns c as codec, assembled in memory from the frames of cached clips:
// the prefix, PrefixGap of silence, the digits with DigitGap between them; repeated
// with c.Pause between repetitions (gaps and pauses rounded up to whole frames of the
// codec's silence byte). Each clip is rendered like any prompt: synthesized once per
// (engine, voice, text), kept in the disk cache, then encoded per codec and kept in
// memory. The code itself is never synthesized as a whole, and its audio is never
// cached, on disk or in memory: the returned Audio belongs to the caller. Once the
// prefix and the ten digits are cached (WarmCode) a code costs no synthesis.
func (r *Renderer) RenderCode(ctx context.Context, c Code, codec Codec) (*Audio, error) {
	if !codec.Valid() {
		return nil, fmt.Errorf("tts: unknown codec %q: use PCMU or PCMA (see ParseCodec)", codec)
	}
	n := 0
	for _, d := range c.Digits {
		if d < '0' || d > '9' {
			return nil, fmt.Errorf("tts: code: only the digits 0-9 can be spoken, not %q", d)
		}
		n++
	}
	if n == 0 || n > MaxCodeDigits {
		return nil, fmt.Errorf("tts: code has %d digits: use 1 to %d", n, MaxCodeDigits)
	}
	repeat := c.Repeat
	if repeat == 0 {
		repeat = 1
	}
	if repeat < 1 || repeat > MaxRepeat {
		return nil, fmt.Errorf("tts: code repeat %d out of range: use 1 to %d", c.Repeat, MaxRepeat)
	}
	if c.Pause < 0 || c.Pause > MaxPause {
		return nil, fmt.Errorf("tts: code pause %s out of range: use 0 to %s", c.Pause, MaxPause)
	}
	var prefix *Audio
	if strings.TrimSpace(c.Prefix) != "" {
		a, err := r.codeClip(ctx, c.segment(c.Prefix), codec)
		if err != nil {
			return nil, fmt.Errorf("tts: code prefix: %w", err)
		}
		prefix = a
	}
	var digits [10]*Audio
	for _, d := range c.Digits {
		if digits[d-'0'] != nil {
			continue
		}
		a, err := r.codeClip(ctx, c.segment(DigitText(d, c.Language)), codec)
		if err != nil {
			return nil, fmt.Errorf("tts: code digit clip: %w", err)
		}
		digits[d-'0'] = a
	}

	silence := codec.SilenceByte()
	gap := func(b []byte, d time.Duration) []byte {
		return append(b, bytes.Repeat([]byte{silence}, durationFrames(d)*FrameBytes)...)
	}
	var once []byte
	if prefix != nil {
		once = append(once, prefix.Payload...)
		once = gap(once, PrefixGap)
	}
	for i, d := range c.Digits {
		if i > 0 {
			once = gap(once, DigitGap)
		}
		once = append(once, digits[d-'0'].Payload...)
	}
	pause := durationFrames(c.Pause) * FrameBytes
	out := make([]byte, 0, repeat*len(once)+(repeat-1)*pause)
	for i := range repeat {
		if i > 0 {
			out = gap(out, c.Pause)
		}
		out = append(out, once...)
	}
	return &Audio{Codec: codec, Payload: out}, nil
}

// WarmCode puts the clips of c's prefix and of the ten digits in c's language and voice
// into the disk cache, so that no code call in that language waits for synthesis. It
// ignores c.Digits and returns how many clips it made ready.
func (r *Renderer) WarmCode(ctx context.Context, c Code) (int, error) {
	texts := []string{}
	if strings.TrimSpace(c.Prefix) != "" {
		texts = append(texts, c.Prefix)
	}
	for d := '0'; d <= '9'; d++ {
		texts = append(texts, DigitText(d, c.Language))
	}
	for i, text := range texts {
		if _, err := r.codeClip(ctx, c.segment(text), PCMU); err != nil {
			return i, fmt.Errorf("tts: code clip %d of %d: %w", i+1, len(texts), err)
		}
	}
	return len(texts), nil
}

func (c Code) segment(text string) Segment {
	return Segment{Text: strings.TrimSpace(text), Voice: c.Voice, Engine: c.Engine, Rate: 1}
}

// codeClip returns the speech of s, trimmed of the silence at its ends, as whole frames
// of codec. Its PCM is the disk cache's entry for s, shared with any other prompt of
// the same text; the trimmed frames are kept in memory.
func (r *Renderer) codeClip(ctx context.Context, s Segment, codec Codec) (*Audio, error) {
	key, err := r.segmentKey(s)
	if err != nil {
		return nil, err
	}
	ak := contentKey(codeClipVersion, key, string(codec))
	if a, ok := r.mem.get(ak); ok {
		return a, nil
	}
	v, err := r.shared(ctx, "code-clip/"+ak, func(ctx context.Context) (any, error) {
		if a, ok := r.mem.get(ak); ok {
			return a, nil
		}
		pcm, err := r.segmentPCM(ctx, key, s)
		if err != nil {
			return nil, err
		}
		a := assemble(trimSilence(pcm), codec, 1, 0)
		r.mem.add(ak, a)
		return a, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Audio), nil
}

// trimSilence returns pcm without the silence at its ends (see codeTrimLevel), keeping
// a little of it on each side. All-silent pcm is returned as it is.
func trimSilence(pcm []int16) []int16 {
	loud := func(s int16) bool { return s > codeTrimLevel || s < -codeTrimLevel }
	first, last := -1, -1
	for i, s := range pcm {
		if loud(s) {
			first = i
			break
		}
	}
	if first < 0 {
		return pcm
	}
	for i := len(pcm) - 1; i >= first; i-- {
		if loud(pcm[i]) {
			last = i
			break
		}
	}
	return pcm[max(0, first-codeTrimLead):min(len(pcm), last+1+codeTrimTail)]
}

// durationFrames is d in whole frames, rounded up.
func durationFrames(d time.Duration) int {
	return int((d + FrameDuration - 1) / FrameDuration)
}
