package billing_test

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/vms-project/vms/billing"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

var fuzzFormats = []string{"rfc3339", "unix", "unix_ms", "2006-01-02 15:04:05"}

// FuzzParseCarrier feeds arbitrary bytes to the carrier CDR parser (the seeds
// in testdata/fuzz/FuzzParseCarrier have odd columns, quotes, a BOM, huge
// fields, bad times): it returns rows or an error, never panics, and the
// rows it returns are sane enough to reconcile.
func FuzzParseCarrier(f *testing.F) {
	f.Add([]byte("call_id,start_time,answer_time,end_time,billed_seconds\nsip-1,2026-03-01T10:00:00Z,2026-03-01T10:00:05Z,2026-03-01T10:01:05Z,60\n"), uint8(0))
	f.Add([]byte("\ufeffcall_id,billed_seconds,start_time\n\"sip-\"\"2\",\"1.5\",1772359200\n"), uint8(1))
	base := config.Defaults().API.Billing.Reconcile
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		cfg := base
		cfg.TimeFormat = fuzzFormats[int(format)%len(fuzzFormats)]
		rows, err := billing.ParseCarrier(bytes.NewReader(data), cfg)
		if err != nil {
			if len(rows) != 0 {
				t.Fatalf("rows with an error: %d", len(rows))
			}
			return
		}
		ours := make([]queue.CDR, 0, len(rows))
		for _, r := range rows {
			if r.ID == "" || len(r.ID) > billing.MaxCarrierIDLen {
				t.Fatalf("row %d: id %q", r.Line, r.ID)
			}
			if math.IsNaN(r.BilledSeconds) || math.IsInf(r.BilledSeconds, 0) || r.BilledSeconds < 0 || r.BilledSeconds > billing.MaxBilledSeconds {
				t.Fatalf("row %d: billed seconds %v", r.Line, r.BilledSeconds)
			}
			for _, tm := range []time.Time{r.Start, r.Answer, r.End} {
				if !tm.IsZero() && (tm.Year() < 1970 || tm.Year() > 9999) {
					t.Fatalf("row %d: time %v", r.Line, tm)
				}
			}
			c := queue.CDR{}
			c.ID, c.CallID, c.BillableMS = r.ID, r.ID, int64(r.BilledSeconds*1000)
			ours = append(ours, c)
		}
		billing.Window(rows)
		res := billing.Reconcile(ours, rows, cfg)
		if math.IsNaN(res.ErrorPermille) || res.ErrorPermille < 0 || res.ErrorPermille > 1000 {
			t.Fatalf("error rate %v", res.ErrorPermille)
		}
	})
}
