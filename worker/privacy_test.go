package worker

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/internal/testutil"
	"github.com/vms-project/vms/queue"
)

// No log line of a whole send → call → report run carries a full phone
// number, at the most detailed level, callee hang-up and busy included.
func TestLogsNeverCarryFullNumbers(t *testing.T) {
	var out testutil.LockedBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newRigLog(t, nil, nil, log)
	r.start(t)
	numbers := []string{"+8613800138011", "+8613800138001", "+8613800138000"}
	for _, to := range numbers {
		rec, err := r.q.SendCode(context.Background(), queue.CodeRequest{To: to, Code: "1234", PlayTimes: 1})
		if err != nil {
			t.Fatal(err)
		}
		r.wait(t, rec.ID, 30*time.Second)
	}
	r.worker.Shutdown()
	logs := out.String()
	if !strings.Contains(logs, "+86*******8011") {
		t.Fatalf("the log does not mention the calls at all (masked): %d bytes", len(logs))
	}
	for _, n := range numbers {
		for _, form := range []string{n, strings.TrimPrefix(n, "+")} {
			if i := strings.Index(logs, form); i >= 0 {
				lo, hi := max(0, i-200), min(len(logs), i+100)
				t.Errorf("log carries the full number %s:\n...%s...", form, logs[lo:hi])
			}
		}
	}
}
