package tts

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	englishCode  = Code{Prefix: "Your verification code is", Language: "en", Voice: "en-us"}
	mandarinCode = Code{Prefix: "您的验证码是", Language: "zh", Voice: "cmn"}
)

func TestDigitText(t *testing.T) {
	for _, tc := range []struct {
		d          rune
		lang, want string
	}{
		{'0', "en", "zero"}, {'1', "en", "one"}, {'7', "en-US", "seven"}, {'9', "en", "nine"},
		{'0', "zh", "零"}, {'1', "zh", "幺"}, {'2', "zh-CN", "二"}, {'7', "cmn", "七"},
		{'4', "ja", "4"}, {'x', "en", ""},
	} {
		if got := DigitText(tc.d, tc.lang); got != tc.want {
			t.Errorf("DigitText(%q, %q) = %q, want %q", tc.d, tc.lang, got, tc.want)
		}
	}
}

// withDigits returns c saying digits played repeat times with pause between.
func withDigits(c Code, digits string, repeat int, pause time.Duration) Code {
	c.Digits, c.Repeat, c.Pause = digits, repeat, pause
	return c
}

// A code's audio is, frame for frame, the prefix clip, PrefixGap of silence, the digit
// clips with DigitGap of silence between them, repeated with the pause between.
func TestRenderCodeIsPrefixAndDigitClips(t *testing.T) {
	requireEspeak(t)
	ctx := testContext(t)
	r := newTestRenderer(t, Espeak{}, t.TempDir())
	for _, base := range []Code{englishCode, mandarinCode} {
		for _, codec := range []Codec{PCMU, PCMA} {
			c := withDigits(base, "4821", 2, 300*time.Millisecond)
			got, err := r.RenderCode(ctx, c, codec)
			if err != nil {
				t.Fatal(err)
			}
			clip := func(text string) []byte {
				a, err := r.codeClip(ctx, c.segment(text), codec)
				if err != nil {
					t.Fatal(err)
				}
				if len(a.Payload) == 0 || len(a.Payload)%FrameBytes != 0 {
					t.Fatalf("clip %q: %d bytes, not whole frames", text, len(a.Payload))
				}
				return a.Payload
			}
			silence := func(d time.Duration) []byte {
				return bytes.Repeat([]byte{codec.SilenceByte()}, int(d/FrameDuration)*FrameBytes)
			}
			var once []byte
			once = append(once, clip(c.Prefix)...)
			once = append(once, silence(PrefixGap)...)
			for i, d := range c.Digits {
				if i > 0 {
					once = append(once, silence(DigitGap)...)
				}
				once = append(once, clip(DigitText(d, c.Language))...)
			}
			want := slices.Concat(once, silence(c.Pause), once)
			if got.Codec != codec || got.Frames() != len(want)/FrameBytes {
				t.Fatalf("%s %s: %s, %d frames, want %s, %d", c.Language, codec, got.Codec, got.Frames(), codec, len(want)/FrameBytes)
			}
			for i := range got.Frames() {
				if !bytes.Equal(got.Frame(i), want[i*FrameBytes:(i+1)*FrameBytes]) {
					t.Fatalf("%s %s: frame %d of %d differs from the clips", c.Language, codec, i, got.Frames())
				}
			}
			t.Logf("%s %s: %d frames, %s", c.Language, codec, got.Frames(), got.Duration())
			if got.Duration() < 3*time.Second || got.Duration() > 12*time.Second {
				t.Errorf("%s %s: implausible duration %s for a 4-digit code played twice", c.Language, codec, got.Duration())
			}
		}
	}
}

// Digit clips are trimmed: their own silence does not add to DigitGap, so every extra
// digit adds one spoken word and one gap, well under a second, and a spoken word.
func TestRenderCodeDigitSpacing(t *testing.T) {
	requireEspeak(t)
	ctx := testContext(t)
	r := newTestRenderer(t, Espeak{}, t.TempDir())
	for _, base := range []Code{englishCode, mandarinCode} {
		var prev time.Duration
		for i, digits := range []string{"1234", "123456", "12345678"} {
			a, err := r.RenderCode(ctx, withDigits(base, digits, 1, 0), PCMU)
			if err != nil {
				t.Fatal(err)
			}
			d := a.Duration()
			t.Logf("%s %s: %s", base.Language, digits, d)
			if i > 0 {
				if per := (d - prev) / 2; per < DigitGap+150*time.Millisecond || per > DigitGap+700*time.Millisecond {
					t.Errorf("%s: each digit adds %s, want a word (150-700 ms) and the %s gap", base.Language, per, DigitGap)
				}
			}
			prev = d
		}
		// The untrimmed clip of one digit is longer than the trimmed one.
		full, err := r.Render(ctx, Prompt{Text: DigitText('5', base.Language), Voice: base.Voice}, PCMU)
		if err != nil {
			t.Fatal(err)
		}
		trimmed, err := r.codeClip(ctx, base.segment(DigitText('5', base.Language)), PCMU)
		if err != nil {
			t.Fatal(err)
		}
		if trimmed.Duration() >= full.Duration()-100*time.Millisecond {
			t.Errorf("%s: digit clip %s, untrimmed %s: silence not trimmed", base.Language, trimmed.Duration(), full.Duration())
		}
	}
}

// listCache returns every file in a cache directory with its size.
func listCache(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, fmt.Sprintf("%s %d", rel, info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// After WarmCode (the prefix and ten digits: 11 syntheses), codes are pure cache
// hits: no synthesis and no new file in the cache directory, in this Renderer or a
// fresh one on the same directory (a restart, another worker).
func TestRenderCodeAfterWarmUpIsACacheHit(t *testing.T) {
	requireEspeak(t)
	ctx := testContext(t)
	dir := t.TempDir()
	eng := &countingEspeak{}
	r := newTestRenderer(t, eng, dir)
	for _, c := range []Code{englishCode, mandarinCode} {
		before := eng.calls.Load()
		n, err := r.WarmCode(ctx, c)
		if err != nil || n != 11 {
			t.Fatalf("%s: WarmCode = %d, %v; want 11 clips", c.Language, n, err)
		}
		if got := eng.calls.Load() - before; got != 11 {
			t.Errorf("%s: warm-up took %d syntheses, want 11 (prefix and ten digits)", c.Language, got)
		}
	}
	warm := listCache(t, dir)
	warmCalls := eng.calls.Load()

	for _, rr := range []*Renderer{r, newTestRenderer(t, eng, dir)} {
		for _, c := range []Code{englishCode, mandarinCode} {
			for _, digits := range []string{"482913", "7705", "0123456789"} {
				for _, codec := range []Codec{PCMU, PCMA} {
					if _, err := rr.RenderCode(ctx, withDigits(c, digits, 2, time.Second), codec); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if n := eng.calls.Load() - warmCalls; n != 0 {
		t.Errorf("%d syntheses for codes after warm-up, want 0", n)
	}
	if got := listCache(t, dir); !slices.Equal(got, warm) {
		t.Errorf("cache has %d files after the code calls, %d before:\n%s\nwas:\n%s", len(got), len(warm),
			strings.Join(got, "\n"), strings.Join(warm, "\n"))
	}
	if entries, _ := r.mem.len(); entries != 2*2*11 {
		t.Errorf("memory cache has %d entries, want %d: only the clips (2 languages × 2 codecs × 11)", entries, 2*2*11)
	}
}

func TestRenderCodeConcurrent(t *testing.T) {
	requireEspeak(t)
	eng := &countingEspeak{}
	r := newTestRenderer(t, eng, t.TempDir())
	var wg sync.WaitGroup
	out := make([]*Audio, 8)
	for i := range out {
		wg.Go(func() {
			a, err := r.RenderCode(testContext(t), withDigits(englishCode, "1111", 1, 0), PCMU)
			if err != nil {
				t.Error(err)
			}
			out[i] = a
		})
	}
	wg.Wait()
	if n := eng.calls.Load(); n != 2 {
		t.Errorf("%d syntheses for 8 concurrent renders of one code, want 2 (prefix, one)", n)
	}
	for i := range out {
		if out[i] == nil || !bytes.Equal(out[i].Payload, out[0].Payload) {
			t.Fatal("concurrent renders differ")
		}
	}
}

type fakeEngine struct{}

func (fakeEngine) Name() string { return "fake" }
func (fakeEngine) Synthesize(_ context.Context, text, _ string) ([]int16, int, error) {
	pcm := make([]int16, 800*len(text))
	for i := range pcm {
		pcm[i] = int16(1000 * (i%16 - 8))
	}
	return pcm, SampleRate, nil
}

func TestRenderCodeErrors(t *testing.T) {
	r := newTestRenderer(t, fakeEngine{}, t.TempDir())
	ctx := testContext(t)
	for _, tc := range []struct {
		c     Code
		codec Codec
		want  string
	}{
		{Code{Prefix: "p", Digits: "12a4"}, PCMU, "only the digits"},
		{Code{Prefix: "p", Digits: ""}, PCMU, "0 digits"},
		{Code{Prefix: "p", Digits: strings.Repeat("1", MaxCodeDigits+1)}, PCMU, "33 digits"},
		{Code{Prefix: "p", Digits: "1234", Repeat: MaxRepeat + 1}, PCMU, "repeat"},
		{Code{Prefix: "p", Digits: "1234", Pause: -time.Second}, PCMU, "pause"},
		{Code{Prefix: "p", Digits: "1234"}, "G729", "unknown codec"},
		{Code{Prefix: "p", Digits: "1234", Engine: "nope"}, PCMU, "unknown TTS engine"},
	} {
		_, err := r.RenderCode(ctx, tc.c, tc.codec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RenderCode(%+v, %s) = %v, want an error with %q", tc.c, tc.codec, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("error names the code: %v", err)
		}
	}
	// Without a prefix the code starts with its first digit.
	a, err := r.RenderCode(ctx, Code{Digits: "12", Language: "en"}, PCMA)
	if err != nil {
		t.Fatal(err)
	}
	if a.Payload[0] == PCMA.SilenceByte() {
		t.Error("code without prefix starts with the prefix gap")
	}
}
