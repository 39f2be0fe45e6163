// Package billing reports what vms billed, from the CDR stream (vms:cdr),
// and reconciles it against a carrier's CDR export.
package billing

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/vms-project/vms/queue"
)

// Row is one group of a report: one app, one trunk, one day (UTC).
type Row struct {
	Day             string `json:"day"`
	App             string `json:"app"`
	Trunk           string `json:"trunk"`
	Calls           int    `json:"calls"`
	Answered        int    `json:"answered"`
	BillableMS      int64  `json:"billable_ms"`
	BillableMinutes int64  `json:"billable_minutes"`
}

// Report is the billing of a period.
type Report struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	App    string    `json:"app,omitempty"`
	Rows   []Row     `json:"rows"`
	Totals Row       `json:"totals"`
}

// Filter selects calls: those started (INVITE sent; enqueued when no INVITE
// left) in [From, To), of App ("" for all).
type Filter struct {
	From, To time.Time
	App      string
}

// callTime is when a call counts as made.
func callTime(r *queue.Record) time.Time {
	if !r.InviteAt.IsZero() {
		return r.InviteAt
	}
	return r.EnqueuedAt
}

// slack is how much earlier than a call's end its start may lie: the
// stream is ordered by end, the report by start.
const slack = 24 * time.Hour

// CDRs returns the CDRs of calls matching f, one per message and attempt:
// when a message has several CDRs (an unknown outcome later replaced by
// the real one) the last wins, so no call is billed twice.
func CDRs(ctx context.Context, q *queue.Client, f Filter) ([]queue.CDR, error) {
	after := ""
	if !f.From.IsZero() {
		after = strconv.FormatInt(f.From.Add(-slack).UnixMilli(), 10) + "-0"
	}
	type key struct {
		id      string
		attempt int
	}
	idx := map[key]int{}
	var out []queue.CDR
	for {
		page, err := q.CDRs(ctx, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("read CDR stream: %w", err)
		}
		for _, c := range page {
			after = c.StreamID
			if !f.To.IsZero() && streamTime(c.StreamID).After(f.To.Add(slack)) {
				return out, nil
			}
			t := callTime(&c.Record)
			if (!f.From.IsZero() && t.Before(f.From)) || (!f.To.IsZero() && !t.Before(f.To)) || (f.App != "" && c.AppID != f.App) {
				continue
			}
			k := key{c.Key(), c.Attempt}
			if i, ok := idx[k]; ok {
				out[i] = c
				continue
			}
			idx[k] = len(out)
			out = append(out, c)
		}
		if len(page) < 1000 {
			return out, nil
		}
	}
}

func streamTime(id string) time.Time {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			ms, _ := strconv.ParseInt(id[:i], 10, 64)
			return time.UnixMilli(ms)
		}
	}
	return time.Time{}
}

// Build reads the CDRs of f and sums them per app, trunk and day.
func Build(ctx context.Context, q *queue.Client, f Filter) (*Report, error) {
	cdrs, err := CDRs(ctx, q, f)
	if err != nil {
		return nil, err
	}
	return Summarize(cdrs, f), nil
}

// Summarize sums CDRs per app, trunk and day (UTC) and in total.
func Summarize(cdrs []queue.CDR, f Filter) *Report {
	groups := map[[3]string]*Row{}
	rep := &Report{From: f.From, To: f.To, App: f.App, Rows: []Row{}, Totals: Row{Day: "total", App: "*", Trunk: "*"}}
	for _, c := range cdrs {
		k := [3]string{callTime(&c.Record).UTC().Format("2006-01-02"), c.AppID, c.Trunk}
		g, ok := groups[k]
		if !ok {
			g = &Row{Day: k[0], App: k[1], Trunk: k[2]}
			groups[k] = g
		}
		for _, r := range []*Row{g, &rep.Totals} {
			r.Calls++
			if c.BillableMS > 0 {
				r.Answered++
			}
			r.BillableMS += c.BillableMS
			r.BillableMinutes += int64(queue.BillableMinutes(c.BillableMS))
		}
	}
	for _, g := range groups {
		rep.Rows = append(rep.Rows, *g)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.App != b.App {
			return a.App < b.App
		}
		return a.Trunk < b.Trunk
	})
	return rep
}

// WriteCSV writes the rows and a final "total" row, with a header.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"day", "app", "trunk", "calls", "answered", "billable_ms", "billable_minutes"})
	for _, row := range append(append([]Row(nil), r.Rows...), r.Totals) {
		_ = cw.Write([]string{row.Day, row.App, row.Trunk, strconv.Itoa(row.Calls), strconv.Itoa(row.Answered),
			strconv.FormatInt(row.BillableMS, 10), strconv.FormatInt(row.BillableMinutes, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
