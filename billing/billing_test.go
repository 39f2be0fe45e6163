package billing_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vms-project/vms/billing"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/queue"
)

func newQueue(t *testing.T) *queue.Client {
	rs := redistest.Start(t)
	q := queue.NewClient(rs.Client(t), queue.Options{Templates: config.Defaults().TemplateRegistry()})
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// finish records one call as a worker would: enqueue, claim, outcome.
func finish(t *testing.T, q *queue.Client, id, app, trunk string, invite time.Time, billableMS int64) {
	t.Helper()
	ctx := context.Background()
	rec, err := q.SendCode(ctx, queue.CodeRequest{ID: id, To: "+8613800138000", Code: "1234", AppID: app})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Claim(ctx, rec.Key(), 1, "w1", "s", queue.Durability{}); err != nil {
		t.Fatal(err)
	}
	rec.Attempt, rec.Trunk, rec.CallID, rec.InviteAt = 1, trunk, "sip-"+id, invite
	rec.Status, rec.SIPCode = queue.StatusBusy, 486
	if billableMS > 0 {
		rec.Status, rec.SIPCode = queue.StatusCompleted, 200
		rec.AnsweredAt = invite.Add(3 * time.Second)
		rec.EndedAt = rec.AnsweredAt.Add(time.Duration(billableMS) * time.Millisecond)
	}
	rec.BillableMS = billableMS
	applyFinish(t, q, "w1", rec)
}

// applyFinish writes an attempt's outcome as the worker (owner) does.
func applyFinish(t *testing.T, q *queue.Client, owner string, rec *queue.Record) {
	t.Helper()
	op, err := queue.FinishOp(owner, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := q.Apply(context.Background(), op); err != nil || !res.Applied {
		t.Fatalf("finish %s: %+v %v", rec.ID, res, err)
	}
}

func TestReportTotals(t *testing.T) {
	q := newQueue(t)
	// Call times near now: the report scans the stream from a day before
	// its start (stream IDs are the time each call was recorded).
	d1 := time.Now().UTC().Truncate(24 * time.Hour).Add(-24*time.Hour + time.Hour)
	d2 := d1.Add(24 * time.Hour)
	finish(t, q, "a1", "shop", "carrier-a", d1, 1)       // 1 min
	finish(t, q, "a2", "shop", "carrier-a", d1, 60_000)  // 1 min
	finish(t, q, "a3", "shop", "carrier-a", d1, 60_001)  // 2 min
	finish(t, q, "a4", "shop", "carrier-a", d1, 0)       // busy
	finish(t, q, "a5", "shop", "carrier-b", d1, 125_000) // 3 min
	finish(t, q, "a6", "bank", "carrier-a", d1, 30_000)  // 1 min
	finish(t, q, "a7", "shop", "carrier-a", d2, 90_000)  // 2 min, next day
	finish(t, q, "x0", "shop", "carrier-a", d1.Add(-48*time.Hour), 90_000)
	// A message first recorded unknown, then its real outcome: billed once.
	ctx := context.Background()
	if _, err := q.SendCode(ctx, queue.CodeRequest{ID: "u1", To: "+8613800138000", Code: "1234", AppID: "shop"}); err != nil {
		t.Fatal(err)
	}
	_, _, _ = q.Claim(ctx, queue.Key("shop", "u1"), 1, "w1", "s", queue.Durability{})
	rec, _ := q.Get(ctx, queue.Key("shop", "u1"))
	// The reaper found w1 dead before its INVITE was recorded: unknown, CDR written.
	rec.Status = queue.StatusUnknown
	if tk, err := q.Takeover(ctx, queue.Key("shop", "u1"), 1, "w1", "w2"); err != nil || tk == nil {
		t.Fatal("takeover", err)
	}
	applyFinish(t, q, "w2", rec)
	rec.Status, rec.Trunk, rec.InviteAt, rec.BillableMS, rec.SIPCode = queue.StatusCompleted, "carrier-a", d1, 10_000, 200
	applyFinish(t, q, "w1", rec)

	rep, err := billing.Build(ctx, q, billing.Filter{From: d1.Add(-time.Hour), To: d2.Add(23 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = rep.WriteCSV(&buf)
	want := strings.NewReplacer("D1", d1.Format("2006-01-02"), "D2", d2.Format("2006-01-02")).Replace(
		`day,app,trunk,calls,answered,billable_ms,billable_minutes
D1,bank,carrier-a,1,1,30000,1
D1,shop,carrier-a,5,4,130002,5
D1,shop,carrier-b,1,1,125000,3
D2,shop,carrier-a,1,1,90000,2
total,*,*,8,7,375002,11
`)
	if buf.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", buf.String(), want)
	}
	shop, err := billing.Build(ctx, q, billing.Filter{From: d1, To: d2, App: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if tot := shop.Totals; tot.Calls != 6 || tot.Answered != 5 || tot.BillableMinutes != 8 {
		t.Errorf("shop on day 1: %+v, want 6 calls, 5 answered, 8 minutes", tot)
	}
	buf.Reset()
	if err := shop.WriteJSON(&buf); err != nil || !strings.Contains(buf.String(), `"billable_minutes": 8`) {
		t.Errorf("JSON report: %v\n%s", err, buf.String())
	}
}

func TestReconcileInjectedDifferences(t *testing.T) {
	q := newQueue(t)
	cfg := config.Defaults().API.Billing.Reconcile
	base := time.Now().UTC().Add(-8 * time.Hour).Truncate(time.Second)
	const n = 400
	for i := 0; i < n; i++ {
		finish(t, q, fmt.Sprintf("m%03d", i), "shop", "carrier-a", base.Add(time.Duration(i)*time.Minute), int64(1000+i*997))
	}
	finish(t, q, "busy1", "shop", "carrier-a", base, 0) // unanswered: carriers do not list it
	ctx := context.Background()

	// The carrier's export, generated from our calls: the carrier rounds
	// billed seconds up, lists one call we never made, misses one of ours
	// and bills one call 5 s longer.
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"call_id", "start_time", "answer_time", "end_time", "billed_seconds"})
	cdrs, err := billing.CDRs(ctx, q, billing.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cdrs {
		if c.BillableMS == 0 || c.ID == "m100" {
			continue
		}
		secs := (c.BillableMS + 999) / 1000
		if c.ID == "m200" {
			secs += 5
		}
		_ = w.Write([]string{c.CallID, c.InviteAt.Format(time.RFC3339), c.AnsweredAt.Format(time.RFC3339), c.EndedAt.Format(time.RFC3339), strconv.FormatInt(secs, 10)})
	}
	_ = w.Write([]string{"sip-phantom", base.Format(time.RFC3339), base.Format(time.RFC3339), base.Add(time.Minute).Format(time.RFC3339), "60"})
	w.Flush()

	theirs, err := billing.ParseCarrier(bytes.NewReader(buf.Bytes()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	from, to := billing.Window(theirs)
	ours, err := billing.CDRs(ctx, q, billing.Filter{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	res := billing.Reconcile(ours, theirs, cfg)
	if res.Calls != n+1 || res.Matched != n-1 || len(res.MissingAtCarrier) != 1 || res.MissingAtCarrier[0] != "sip-m100" ||
		len(res.MissingOurs) != 1 || res.MissingOurs[0] != "sip-phantom" || len(res.Differences) != 1 || res.Differences[0].ID != "sip-m200" {
		t.Fatalf("result %+v", res)
	}
	// 3 errors in 401 calls = 7.48‰: over the default 5‰.
	if res.Errors != 3 || res.ErrorPermille != 7.48 || res.WithinTolerance {
		t.Errorf("errors %d, %g‰, within %v; want 3, 7.48‰, not within 5‰", res.Errors, res.ErrorPermille, res.WithinTolerance)
	}
	cfg.TolerancePermille = 10
	if !billing.Reconcile(ours, theirs, cfg).WithinTolerance {
		t.Error("7.48‰ is within a 10‰ tolerance")
	}
	// A configured column the file lacks is reported by name.
	cfg.Columns.BilledSeconds = "duration"
	if _, err := billing.ParseCarrier(bytes.NewReader(buf.Bytes()), cfg); err == nil || !strings.Contains(err.Error(), `"duration"`) {
		t.Errorf("missing column: %v", err)
	}
}
