package billing

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
)

// CarrierCDR is one row of a carrier's CDR export.
type CarrierCDR struct {
	Line          int
	ID            string
	Start         time.Time
	Answer        time.Time
	End           time.Time
	BilledSeconds float64
}

// Limits of a carrier CDR file.
const (
	// MaxCarrierFileBytes is the largest file read (about ten million rows).
	MaxCarrierFileBytes = 1 << 30
	// MaxCarrierIDLen is the longest call ID accepted.
	MaxCarrierIDLen = 256
	// MaxBilledSeconds is the longest billed duration accepted (30 days).
	MaxBilledSeconds = 30 * 24 * 3600
)

// Times outside these years are not CDR times.
const minCDRYear, maxCDRYear = 1970, 9999

// ParseCarrier reads a carrier CSV export with a header row, taking the
// columns cfg names. A missing column or an unreadable value is an error
// naming the line and column. Rows may have more or fewer columns than the
// header as long as the ones used are there. It reads at most
// MaxCarrierFileBytes.
func ParseCarrier(r io.Reader, cfg config.Reconcile) ([]CarrierCDR, error) {
	lr := &io.LimitedReader{R: r, N: MaxCarrierFileBytes + 1}
	cr := csv.NewReader(lr)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("carrier CDR file: read header: %w", err)
	}
	col := map[string]int{}
	dup := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		}
		if _, ok := col[h]; ok {
			dup[h] = true
			continue
		}
		col[h] = i
	}
	shownHeader := strings.Join(header, ",")
	if len(shownHeader) > 200 {
		shownHeader = shownHeader[:200] + "…"
	}
	idx := func(name string, required bool) (int, error) {
		if name == "" {
			return -1, nil
		}
		i, ok := col[name]
		if dup[name] {
			return 0, fmt.Errorf("carrier CDR file: column %q appears more than once in the header", name)
		}
		if !ok && required {
			return 0, fmt.Errorf("carrier CDR file has no column %q (header: %q): set api.billing.reconcile.columns", name, shownHeader)
		}
		if !ok {
			return -1, nil
		}
		return i, nil
	}
	c := cfg.Columns
	iID, err := idx(c.ID, true)
	if err != nil {
		return nil, err
	}
	iBilled, err := idx(c.BilledSeconds, true)
	if err != nil {
		return nil, err
	}
	iStart, err := idx(c.Start, false)
	if err != nil {
		return nil, err
	}
	iAnswer, err := idx(c.Answer, false)
	if err != nil {
		return nil, err
	}
	iEnd, err := idx(c.End, false)
	if err != nil {
		return nil, err
	}
	var out []CarrierCDR
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			if lr.N <= 0 {
				return nil, fmt.Errorf("carrier CDR file is larger than %d bytes: split it by period", MaxCarrierFileBytes)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("carrier CDR file: %w", err)
		}
		line, _ := cr.FieldPos(0)
		field := func(i int) string {
			if i < 0 || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		// A short row must still have the required columns; a time
		// column it lacks is empty.
		for _, u := range []struct {
			i    int
			name string
		}{{iID, c.ID}, {iBilled, c.BilledSeconds}} {
			if u.i >= len(rec) {
				return nil, fmt.Errorf("carrier CDR file line %d has %d columns: no column %s (column %d of the header)", line, len(rec), u.name, u.i+1)
			}
		}
		row := CarrierCDR{Line: line, ID: field(iID)}
		if row.ID == "" {
			return nil, fmt.Errorf("carrier CDR file line %d: column %s is empty", line, c.ID)
		}
		if len(row.ID) > MaxCarrierIDLen {
			return nil, fmt.Errorf("carrier CDR file line %d: column %s is %d bytes long: not a call ID", line, c.ID, len(row.ID))
		}
		billed := field(iBilled)
		if row.BilledSeconds, err = strconv.ParseFloat(billed, 64); err != nil || !(row.BilledSeconds >= 0 && row.BilledSeconds <= MaxBilledSeconds) {
			return nil, fmt.Errorf("carrier CDR file line %d: %s %q is not a number of seconds (0 to %d)", line, c.BilledSeconds, clip(billed), MaxBilledSeconds)
		}
		for _, f := range []struct {
			i    int
			name string
			dst  *time.Time
		}{{iStart, c.Start, &row.Start}, {iAnswer, c.Answer, &row.Answer}, {iEnd, c.End, &row.End}} {
			v := field(f.i)
			if v == "" {
				continue
			}
			if *f.dst, err = parseTime(v, cfg.TimeFormat); err != nil {
				return nil, fmt.Errorf("carrier CDR file line %d: %s: %w", line, f.name, err)
			}
		}
		out = append(out, row)
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func parseTime(s, format string) (time.Time, error) {
	var t time.Time
	var err error
	switch format {
	case "rfc3339":
		t, err = time.Parse(time.RFC3339Nano, s)
	case "unix", "unix_ms":
		v, perr := strconv.ParseFloat(s, 64)
		if format == "unix" {
			v *= 1000
		}
		// Within years 1970 to 9999 (checked below): also keeps the
		// conversion to int64 defined.
		if perr != nil || !(v >= 0 && v < 253402300800000) {
			return time.Time{}, fmt.Errorf("%q is not a Unix time", clip(s))
		}
		t = time.UnixMilli(int64(v)).UTC()
	default:
		t, err = time.ParseInLocation(format, s, time.UTC)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time in format %s", clip(s), format)
	}
	if y := t.UTC().Year(); y < minCDRYear || y > maxCDRYear {
		return time.Time{}, fmt.Errorf("%q is in year %d", clip(s), y)
	}
	return t, nil
}

// Window returns the period the carrier rows cover: from the earliest
// start (answer, end when absent) to just after the latest.
func Window(rows []CarrierCDR) (from, to time.Time) {
	for _, r := range rows {
		t := r.Start
		if t.IsZero() {
			t = r.Answer
		}
		if t.IsZero() {
			t = r.End
		}
		if t.IsZero() {
			continue
		}
		if from.IsZero() || t.Before(from) {
			from = t
		}
		if t.After(to) {
			to = t
		}
	}
	if !to.IsZero() {
		to = to.Add(time.Second)
	}
	return from, to
}

// Diff is one call on which we and the carrier disagree.
type Diff struct {
	ID                   string  `json:"id"`
	OurMS                int64   `json:"our_billable_ms"`
	CarrierSeconds       float64 `json:"carrier_billed_seconds"`
	OurMinutes           int     `json:"our_minutes"`
	CarrierMinutes       int     `json:"carrier_minutes"`
	DifferenceSeconds    float64 `json:"difference_seconds"`
	CarrierLine          int     `json:"carrier_line"`
	MinutesDisagree      bool    `json:"minutes_disagree"`
	DurationOutTolerance bool    `json:"duration_out_of_tolerance"`
}

// Result is the outcome of a reconciliation.
type Result struct {
	Calls             int      `json:"calls"`   // distinct calls on either side
	Matched           int      `json:"matched"` // on both sides
	MissingAtCarrier  []string `json:"missing_at_carrier"`
	MissingOurs       []string `json:"missing_ours"`
	Differences       []Diff   `json:"differences"`
	Errors            int      `json:"errors"`
	ErrorPermille     float64  `json:"error_permille"`
	TolerancePermille float64  `json:"tolerance_permille"`
	WithinTolerance   bool     `json:"within_tolerance"`
}

// Reconcile compares our CDRs with the carrier's rows. A call counts as
// one error when it is missing on either side, or when the billed duration
// differs by more than cfg.DurationTolerance or the billed minutes differ.
// Unanswered calls are compared only with cfg.IncludeUnanswered.
func Reconcile(ours []queue.CDR, theirs []CarrierCDR, cfg config.Reconcile) Result {
	res := Result{TolerancePermille: cfg.TolerancePermille, MissingAtCarrier: []string{}, MissingOurs: []string{}, Differences: []Diff{}}
	mine := map[string]queue.CDR{}
	for _, c := range ours {
		if c.BillableMS <= 0 && !cfg.IncludeUnanswered {
			continue
		}
		k := c.ID
		if cfg.MatchOn == "call_id" {
			k = c.CallID
		}
		if k != "" {
			mine[k] = c
		}
	}
	seen := map[string]bool{}
	for _, t := range theirs {
		if t.BilledSeconds <= 0 && !cfg.IncludeUnanswered {
			continue
		}
		if seen[t.ID] {
			continue // a carrier listing a call twice: compared once
		}
		seen[t.ID] = true
		res.Calls++
		c, ok := mine[t.ID]
		if !ok {
			res.MissingOurs = append(res.MissingOurs, t.ID)
			continue
		}
		res.Matched++
		d := Diff{ID: t.ID, OurMS: c.BillableMS, CarrierSeconds: t.BilledSeconds, OurMinutes: queue.BillableMinutes(c.BillableMS),
			CarrierMinutes: int(math.Ceil(t.BilledSeconds / 60)), CarrierLine: t.Line}
		d.DifferenceSeconds = math.Round((float64(c.BillableMS)/1000-t.BilledSeconds)*1000) / 1000
		d.MinutesDisagree = d.OurMinutes != d.CarrierMinutes
		d.DurationOutTolerance = math.Abs(d.DifferenceSeconds) > cfg.DurationTolerance.D().Seconds()
		if d.MinutesDisagree || d.DurationOutTolerance {
			res.Differences = append(res.Differences, d)
		}
	}
	for k := range mine {
		if !seen[k] {
			res.Calls++
			res.MissingAtCarrier = append(res.MissingAtCarrier, k)
		}
	}
	sort.Strings(res.MissingAtCarrier)
	sort.Strings(res.MissingOurs)
	res.Errors = len(res.MissingAtCarrier) + len(res.MissingOurs) + len(res.Differences)
	if res.Calls > 0 {
		res.ErrorPermille = math.Round(float64(res.Errors)*1000/float64(res.Calls)*100) / 100
	}
	res.WithinTolerance = res.ErrorPermille <= cfg.TolerancePermille
	return res
}
