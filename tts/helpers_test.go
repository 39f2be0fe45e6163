package tts

import (
	"context"
	"math"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

// requireEspeak fails the test when espeak-ng is missing (these tests exercise the real
// binary); set VMS_SKIP_ESPEAK=1 to skip them instead on a machine without it.
func requireEspeak(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		if os.Getenv("VMS_SKIP_ESPEAK") != "" {
			t.Skip("espeak-ng not installed and VMS_SKIP_ESPEAK set")
		}
		t.Fatalf("espeak-ng not installed (apt-get install -y espeak-ng), or set VMS_SKIP_ESPEAK=1: %v", err)
	}
}

// countingEspeak is the real espeak-ng engine, counting how often it synthesizes.
type countingEspeak struct {
	Espeak
	calls atomic.Int32
}

func (c *countingEspeak) Synthesize(ctx context.Context, text, voice string) ([]int16, int, error) {
	c.calls.Add(1)
	return c.Espeak.Synthesize(ctx, text, voice)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pcmRMS is the root mean square of all of pcm.
func pcmRMS(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

func seconds(samples, rate int) time.Duration {
	return time.Duration(samples) * time.Second / time.Duration(rate)
}
