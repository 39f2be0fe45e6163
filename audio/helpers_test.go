package audio

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// requireTool fails the test when a program that makes the test files is missing:
// these tests decode real files written by real encoders (`make deps-test` installs
// them). VMS_SKIP_AUDIO_TOOLS=1 skips instead, on a machine without them.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("VMS_SKIP_AUDIO_TOOLS") != "" {
			t.Skipf("%s not installed and VMS_SKIP_AUDIO_TOOLS set", name)
		}
		t.Fatalf("%s not installed (apt-get install -y sox lame espeak-ng), or set VMS_SKIP_AUDIO_TOOLS=1: %v", name, err)
	}
}

// run runs a program and fails the test with its output if it fails.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	requireTool(t, name)
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// soxTone writes a file (format from the extension) of silence, a 1 kHz tone of
// amplitude amp (0..1) for secs seconds, and silence again, with sox options before
// the output file (rate, channels, encoding).
func soxTone(t testing.TB, name string, secs, amp float64, opts ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	args := append([]string{"-n"}, opts...)
	args = append(args, path, "synth", ftoa(secs), "sine", "1000", "vol", ftoa(amp), "pad", "0.4", "0.3")
	run(t, "sox", args...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// frequency estimates the dominant frequency of a tone at rate by counting upward
// zero crossings.
func frequency(body []int16, rate int) float64 {
	n := 0
	for i := 1; i < len(body); i++ {
		if body[i-1] < 0 && body[i] >= 0 {
			n++
		}
	}
	return float64(n) * float64(rate) / float64(len(body))
}

func rmsDB(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return 10 * math.Log10(s/float64(len(pcm))/(32768*32768))
}
