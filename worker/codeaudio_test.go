package worker

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/routing"
	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/tts"
)

// countingEngine is espeak-ng counting its syntheses and their time.
type countingEngine struct {
	tts.Espeak
	calls atomic.Int64
	took  atomic.Int64 // ns
}

func (e *countingEngine) Synthesize(ctx context.Context, text, voice string) ([]int16, int, error) {
	e.calls.Add(1)
	start := time.Now()
	defer func() { e.took.Add(int64(time.Since(start))) }()
	return e.Espeak.Synthesize(ctx, text, voice)
}

// renderHandler is a Handler with just what render needs: a renderer on its
// own cache directory synthesizing with engine, one PCMU+PCMA trunk and the
// default config's speech settings.
func renderHandler(t testing.TB, engine tts.Engine, dir string) *Handler {
	t.Helper()
	cfg := config.Defaults()
	r, err := tts.NewRenderer(engine, dir)
	if err != nil {
		t.Fatal(err)
	}
	trunk := &routing.Trunk{Trunk: telephony.Trunk{Name: "t", Codecs: []tts.Codec{tts.PCMU, tts.PCMA}}}
	return &Handler{
		Renderer: r,
		Router:   routing.New(nil, []*routing.Trunk{trunk}, nil, routing.Options{}),
		Speech: Speech{CodePrefix: cfg.Code.PrefixText, Voices: cfg.TTS.Voices,
			RepeatPause: cfg.Call.RepeatPause.D(), LanguageEngines: cfg.Audio.LanguageEngines},
	}
}

// codeMessage is the i-th of distinct six-digit code messages in lang.
func codeMessage(i int, lang string) queue.Message {
	return queue.Message{Kind: queue.KindCode, Code: fmt.Sprintf("%06d", 100003*(i+1)%1000000), Language: lang, PlayTimes: 2}
}

// TestCodeCallsAfterWarmUpAreCacheHits renders distinct codes through the
// worker's render path (both codecs, as for a PCMU+PCMA trunk) and counts
// engine invocations: `vms tts warm`'s work (WarmCodes) synthesizes the prefix
// and the ten digits of each language, 11 clips; after it a code call
// synthesizes nothing and adds no file to the cache directory. Without the
// warm-up, the first calls synthesize the clips they lack, never a code.
func TestCodeCallsAfterWarmUpAreCacheHits(t *testing.T) {
	const n = 20
	for _, warm := range []bool{true, false} {
		for _, lang := range []string{"en", "zh"} {
			e := &countingEngine{}
			dir := t.TempDir()
			h := renderHandler(t, e, dir)
			if warm {
				if failed := h.WarmCodes(context.Background(), func(l string, clips int, err error) {
					if err != nil || clips != 11 {
						t.Errorf("warm %s: %d clips, %v; want 11", l, clips, err)
					}
				}); failed != 0 {
					t.Fatalf("%d languages failed to warm", failed)
				}
				// Both languages of the config: 2 × 11.
				if got := e.calls.Load(); got != 2*11 {
					t.Errorf("warm-up: %d syntheses, want 22 (prefix and ten digits of en and zh)", got)
				}
			}
			warmCalls, files := e.calls.Load(), cacheFiles(t, dir)
			start := time.Now()
			var firstCalls int64
			for i := range n {
				if _, err := h.render(context.Background(), codeMessage(i, lang)); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					firstCalls = e.calls.Load() - warmCalls
				}
			}
			calls, took := e.calls.Load()-warmCalls, time.Since(start)
			t.Logf("warm=%v %s: %d codes: %d syntheses (first code %d), %s per code, cache files %d → %d",
				warm, lang, n, calls, firstCalls, (took / n).Round(time.Microsecond), len(files), len(cacheFiles(t, dir)))
			if warm {
				if calls != 0 {
					t.Errorf("%s: %d syntheses for %d codes after warm-up, want 0", lang, calls, n)
				}
				if got := cacheFiles(t, dir); !slices.Equal(got, files) {
					t.Errorf("%s: code calls changed the cache directory:\n%v\nwas\n%v", lang, got, files)
				}
			} else if calls > 11 {
				t.Errorf("%s: %d syntheses for %d codes from a cold cache, want at most 11 (prefix and digits)", lang, calls, n)
			}
		}
	}
}

// BenchmarkCodeCallRender is one code call's rendering (both codecs) after
// warm-up: go test -run '^$' -bench CodeCallRender ./worker/
func BenchmarkCodeCallRender(b *testing.B) {
	e := &countingEngine{}
	h := renderHandler(b, e, b.TempDir())
	h.WarmCodes(context.Background(), func(string, int, error) {})
	warm := e.calls.Load()
	i := 0
	for b.Loop() {
		if _, err := h.render(context.Background(), codeMessage(i, "en")); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(e.calls.Load()-warm)/float64(b.N), "syntheses/op")
}

// cacheFiles lists the files under the cache directory dir.
func cacheFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
