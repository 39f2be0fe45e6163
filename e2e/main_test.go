package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// vmsBin is the vms binary built by TestMain; ttsCache is the TTS cache
// every worker of every test shares (as workers of one host do), so a
// prompt is synthesized once per run.
var (
	vmsBin   string
	ttsCache string
	runDir   string
)

// defaultParallel is how many tests run at once when -test.parallel is
// not given: they mostly wait on calls and timers, not on the CPU.
const defaultParallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", defaultParallel)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vms-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	runDir = dir
	defer func() {
		if os.Getenv("VMS_E2E_KEEP") == "" {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "e2e: kept", dir)
		}
	}()
	ttsCache = filepath.Join(dir, "tts-cache")
	vmsBin = filepath.Join(dir, "vms")
	return m.Run()
}

var (
	buildOnce sync.Once
	buildErr  error
)

// binary builds vms on first use (so `go test -run '^$' -bench .` builds
// nothing), with -race when this test binary has it.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		args := []string{"build", "-o", vmsBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/vms")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %v: %v\n%s", args, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return vmsBin
}
