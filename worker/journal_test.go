package worker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
)

// TestJournalKeepsOutcomesRedisCouldNotTake: a worker that cannot reach
// Redis keeps a call's progress and outcome in its journal (fsynced, one
// file per process); when it dies, the next worker on the same
// journal_dir replays them in order, and replaying again changes nothing.
func TestJournalKeepsOutcomesRedisCouldNotTake(t *testing.T) {
	cfg := config.Defaults()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	q := queue.NewClient(rdb, queue.Options{Templates: cfg.TemplateRegistry(), DefaultLanguage: "en",
		Languages: map[string]bool{"en": true}})
	t.Cleanup(func() { _ = q.Close() })
	ctx := context.Background()
	rec, err := q.SendCode(ctx, queue.CodeRequest{To: "+8613800138000", Code: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := q.Claim(ctx, rec.ID, 1, "w1", "slot", queue.Durability{}); err != nil || out != queue.Claimed {
		t.Fatal(out, err)
	}

	// Worker w1 loses Redis (nothing listens at this address).
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	qDead := queue.NewClient(dead, queue.Options{})
	t.Cleanup(func() { _ = qDead.Close() })
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	j1, err := openJournal(dir, "w1", qDead, log)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	j1.record(queue.ProgressOp(rec.ID, 1, "w1", queue.StatusAnswered, map[string]string{"answered_at": now.Format(time.RFC3339Nano)}))
	done := &queue.Record{Message: rec.Message, Attempt: 1, Status: queue.StatusCompleted, SIPCode: 200,
		AnsweredAt: now, EndedAt: now.Add(4 * time.Second), BillableMS: 4000, HungUpBy: "caller"}
	op, err := queue.FinishOp("w1", done, []queue.Attempt{{Attempt: 1, Try: 1, Trunk: "t", Status: queue.StatusCompleted}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	j1.record(op)
	if n := j1.Pending(); n != 2 {
		t.Fatalf("pending %d, want 2", n)
	}
	b, _ := os.ReadFile(j1.path)
	if lines := strings.Count(string(b), "\n"); lines != 2 {
		t.Fatalf("journal file has %d entries, want 2:\n%s", lines, b)
	}
	if got, _ := q.Get(ctx, rec.ID); got.Status != queue.StatusDialing {
		t.Fatalf("record %s while Redis was out of reach, want dialing", got.Status)
	}
	// w1 dies: its file stays, its lock goes.
	_ = j1.f.Close()

	// A worker on the same journal_dir replays it at start-up, then removes it.
	j2, err := openJournal(dir, "w2", q, log)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.close()
	if err := j2.recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := q.Get(ctx, rec.ID)
	if err != nil || got.Status != queue.StatusCompleted || got.BillableMS != 4000 || got.AnsweredAt.IsZero() {
		t.Fatalf("record after replay: %+v %v", got, err)
	}
	if _, err := os.Stat(j1.path); !os.IsNotExist(err) {
		t.Fatalf("replayed journal still there: %v", err)
	}
	// Replaying the same ops again (a crash mid-replay) changes nothing.
	for _, o := range []queue.Op{op} {
		if res, err := q.Apply(ctx, o); err != nil || res.Applied {
			t.Fatalf("second replay: %+v %v, want not applied", res, err)
		}
	}
	cdrs, err := q.CDRs(ctx, "", 10)
	if err != nil || len(cdrs) != 1 {
		t.Fatalf("CDRs %d (%v), want 1", len(cdrs), err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "journal-*.log")); len(files) != 1 {
		t.Fatalf("journal files %v, want only w2's", files)
	}
}
