package tts

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	englishPrompt  = Prompt{Text: "Your order number is 1, 2, 3, 4.", Voice: "en-us"}
	mandarinPrompt = Prompt{Text: "您的订单号是 1，2，3，4。", Voice: "cmn"}
)

func newTestRenderer(t *testing.T, eng Engine, dir string) *Renderer {
	t.Helper()
	r, err := NewRenderer(eng, dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderSpeech(t *testing.T) {
	requireEspeak(t)
	r := newTestRenderer(t, Espeak{}, t.TempDir())
	for _, p := range []Prompt{englishPrompt, mandarinPrompt} {
		for _, codec := range []Codec{PCMU, PCMA} {
			a, err := r.Render(testContext(t), p, codec)
			if err != nil {
				t.Fatalf("%s %s: %v", p.Voice, codec, err)
			}
			if a.Codec != codec || len(a.Payload)%FrameBytes != 0 || a.Frames() == 0 {
				t.Fatalf("%s %s: codec %s, %d bytes", p.Voice, codec, a.Codec, len(a.Payload))
			}
			level := pcmRMS(Decode(a.Payload, codec))
			t.Logf("%s %s %q: %d frames, %s, RMS %.0f", p.Voice, codec, p.Text, a.Frames(), a.Duration(), level)
			if a.Duration() < 2*time.Second || a.Duration() > 8*time.Second {
				t.Errorf("%s %s: implausible duration %s for a 4-digit number", p.Voice, codec, a.Duration())
			}
			if level < 300 {
				t.Errorf("%s %s: nearly silent (RMS %.0f)", p.Voice, codec, level)
			}
		}
	}
}

func TestRenderRepeatWithPause(t *testing.T) {
	requireEspeak(t)
	r := newTestRenderer(t, Espeak{}, t.TempDir())
	for _, base := range []Prompt{englishPrompt, mandarinPrompt} {
		for _, codec := range []Codec{PCMU, PCMA} {
			one, err := r.Render(testContext(t), base, codec)
			if err != nil {
				t.Fatal(err)
			}
			p := base
			p.Repeat, p.Pause = 2, 500*time.Millisecond
			two, err := r.Render(testContext(t), p, codec)
			if err != nil {
				t.Fatal(err)
			}
			pauseFrames := int(p.Pause / FrameDuration)
			want := 2*one.Frames() + pauseFrames
			t.Logf("%s %s: single %d frames, Repeat=2 Pause=500ms %d frames (2×single+pause = %d)", p.Voice, codec, one.Frames(), two.Frames(), want)
			if d := two.Frames() - want; d < -1 || d > 1 {
				t.Errorf("%s %s: %d frames, want %d ±1", p.Voice, codec, two.Frames(), want)
			}
			// The first repetition is the single rendering (its last, padded frame aside),
			// and the pause that follows it is silence.
			n := len(one.Payload)
			if !bytes.Equal(two.Payload[:n-FrameBytes], one.Payload[:n-FrameBytes]) {
				t.Errorf("%s %s: first repetition differs from the single rendering", p.Voice, codec)
			}
			pause := two.Payload[n : n+pauseFrames*FrameBytes-FrameBytes]
			for i, b := range pause {
				if b != codec.SilenceByte() {
					t.Errorf("%s %s: pause byte %d is %#x, want silence %#x", p.Voice, codec, i, b, codec.SilenceByte())
					break
				}
			}
			last := two.Frame(two.Frames() - 1)
			if last[FrameBytes-1] != codec.SilenceByte() {
				t.Errorf("%s %s: last frame padded with %#x", p.Voice, codec, last[FrameBytes-1])
			}
		}
	}
}

func TestRenderCacheSynthesizesOnce(t *testing.T) {
	requireEspeak(t)
	dir := t.TempDir()
	eng := &countingEspeak{}
	ctx := testContext(t)

	r := newTestRenderer(t, eng, dir)
	first, err := r.Render(ctx, englishPrompt, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Render(ctx, englishPrompt, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("second Render in the same Renderer did not come from memory")
	}
	// Other codecs and layouts of the same text reuse the cached PCM.
	for _, p := range []Prompt{englishPrompt, {Text: englishPrompt.Text, Voice: "en-us", Repeat: 3, Pause: time.Second}} {
		if _, err := r.Render(ctx, p, PCMA); err != nil {
			t.Fatal(err)
		}
	}
	if n := eng.calls.Load(); n != 1 {
		t.Fatalf("espeak-ng ran %d times in one Renderer, want 1", n)
	}

	// A new Renderer on the same directory (a restart, or another worker) reads the disk.
	r2 := newTestRenderer(t, eng, dir)
	fresh, err := r2.Render(ctx, englishPrompt, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	if n := eng.calls.Load(); n != 1 {
		t.Fatalf("espeak-ng ran %d times after a restart, want 1", n)
	}
	if !bytes.Equal(fresh.Payload, first.Payload) {
		t.Error("audio from the disk cache differs from the original rendering")
	}

	// Different settings are a different cache entry.
	slow := &countingEspeak{Espeak: Espeak{Speed: 120}}
	if _, err := newTestRenderer(t, slow, dir).Render(ctx, englishPrompt, PCMU); err != nil {
		t.Fatal(err)
	}
	if n := slow.calls.Load(); n != 1 {
		t.Errorf("a different Speed was served from the cache (%d syntheses)", n)
	}

	// The cache holds complete WAV files only: no temporary files are left behind.
	var wavs int
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Base(filepath.Dir(path)) == "locks" {
			return nil // cross-process lock files
		}
		if !strings.HasSuffix(path, ".wav") {
			t.Errorf("stray file %s", path)
			return nil
		}
		b, _ := os.ReadFile(path)
		if _, rate, err := parseWAV(b); err != nil || rate != SampleRate {
			t.Errorf("%s: %d Hz, %v", path, rate, err)
		}
		wavs++
		return nil
	})
	if wavs != 2 {
		t.Errorf("%d cached files, want 2 (one per speed)", wavs)
	}
}

func TestRenderConcurrentCallsShareOneSynthesis(t *testing.T) {
	requireEspeak(t)
	eng := &countingEspeak{}
	r := newTestRenderer(t, eng, t.TempDir())
	p := Prompt{Text: "Your order number is 9, 8, 7, 6, 5.", Voice: "en-us", Repeat: 2, Pause: 300 * time.Millisecond}

	var wg sync.WaitGroup
	results := make([]*Audio, 16)
	for i := range results {
		wg.Go(func() {
			codec := []Codec{PCMU, PCMA}[i%2]
			a, err := r.Render(testContext(t), p, codec)
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = a
		})
	}
	wg.Wait()
	if n := eng.calls.Load(); n != 1 {
		t.Errorf("espeak-ng ran %d times for 16 concurrent Renders, want 1", n)
	}
	for i, a := range results {
		if a != nil && results[i%2] != nil && !bytes.Equal(a.Payload, results[i%2].Payload) {
			t.Errorf("result %d differs from result %d", i, i%2)
		}
	}
}

func TestRenderCallerGivingUpDoesNotFailOthers(t *testing.T) {
	requireEspeak(t)
	eng := &countingEspeak{}
	r := newTestRenderer(t, eng, t.TempDir())
	p := Prompt{Text: "A caller that gives up early.", Voice: "en-us"}

	impatient, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := r.Render(impatient, p, PCMU); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("impatient caller: %v", err)
		}
	})
	a, err := r.Render(testContext(t), p, PCMU)
	wg.Wait()
	if err != nil || a.Frames() == 0 {
		t.Fatalf("patient caller: %v", err)
	}
	if n := eng.calls.Load(); n > 1 {
		t.Errorf("espeak-ng ran %d times, want at most 1", n)
	}
}

func TestRenderRepairsDamagedCacheFile(t *testing.T) {
	requireEspeak(t)
	dir := t.TempDir()
	eng := &countingEspeak{}
	want, err := newTestRenderer(t, eng, dir).Render(testContext(t), englishPrompt, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "pcm", "*", "*.wav"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	if err := os.WriteFile(files[0], []byte("RIFF junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := newTestRenderer(t, eng, dir).Render(testContext(t), englishPrompt, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	if n := eng.calls.Load(); n != 2 {
		t.Errorf("espeak-ng ran %d times, want 2 (once more to repair the file)", n)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Error("re-synthesized audio differs")
	}
	if b, err := os.ReadFile(files[0]); err != nil {
		t.Errorf("cache file not repaired: %v", err)
	} else if _, _, err := parseWAV(b); err != nil {
		t.Errorf("cache file not repaired: %v", err)
	}
}

func TestRenderErrors(t *testing.T) {
	requireEspeak(t)
	r := newTestRenderer(t, Espeak{}, t.TempDir())
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		p     Prompt
		codec Codec
		want  string
	}{
		{"bad codec", englishPrompt, "G729", "use PCMU or PCMA"},
		{"empty text", Prompt{Text: "  ", Voice: "en-us"}, PCMU, "empty prompt text"},
		{"negative repeat", Prompt{Text: "hi", Voice: "en-us", Repeat: -1}, PCMU, "use 1 to 20"},
		{"huge pause", Prompt{Text: "hi", Voice: "en-us", Pause: time.Hour}, PCMU, "out of range"},
		{"unknown voice", Prompt{Text: "hi", Voice: "xx-nope"}, PCMU, "espeak-ng --voices"},
	} {
		_, err := r.Render(ctx, tc.p, tc.codec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	if _, err := r.Render(ctx, Prompt{Text: "hi", Voice: "xx-nope"}, PCMU); !errors.Is(err, ErrUnknownVoice) {
		t.Errorf("unknown voice: %v does not wrap ErrUnknownVoice", err)
	}

	missing := newTestRenderer(t, Espeak{Binary: "/nonexistent/espeak-ng"}, t.TempDir())
	_, err := missing.Render(ctx, englishPrompt, PCMU)
	if !errors.Is(err, ErrEspeakNotFound) || !strings.Contains(err.Error(), installHint) {
		t.Errorf("missing binary: error %v, want %q", err, installHint)
	}

	if _, err := NewRenderer(nil, t.TempDir()); err == nil {
		t.Error("NewRenderer accepted a nil engine")
	}
	if _, err := NewRenderer(Espeak{}, ""); err == nil {
		t.Error("NewRenderer accepted an empty cache directory")
	}
}

func TestNewRendererCreatesCacheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := NewRenderer(Espeak{}, dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "pcm")); err != nil || !fi.IsDir() {
		t.Errorf("cache directory not created: %v", err)
	}
}

// panickyEngine is not a stand-in for espeak-ng: it checks that an engine bug is an
// error for the caller, not a crash of the worker.
type panickyEngine struct{}

func (panickyEngine) Name() string { return "panicky" }
func (panickyEngine) Synthesize(context.Context, string, string) ([]int16, int, error) {
	panic("engine bug")
}

func TestRenderEnginePanicIsAnError(t *testing.T) {
	r := newTestRenderer(t, panickyEngine{}, t.TempDir())
	if _, err := r.Render(testContext(t), Prompt{Text: "hi"}, PCMU); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("error %v, want a panic report", err)
	}
}
