package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vms-project/vms/billing"
)

// exitOverTolerance is the exit code of `vms billing reconcile` when the
// error rate exceeds api.billing.reconcile.tolerance_permille.
const exitOverTolerance = 5

func cmdBilling(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "usage: vms billing report|reconcile ... (see vms help)", "report", "reconcile")
	if err != nil {
		return err
	}
	fs, cfgPath := newFlags("billing "+sub, stderr)
	app := fs.String("app", "", "only this app (report; default: all apps)")
	fromS := fs.String("from", "", "start of the period, RFC 3339 or YYYY-MM-DD (UTC), inclusive")
	toS := fs.String("to", "", "end of the period, RFC 3339 or YYYY-MM-DD (UTC), exclusive")
	format := fs.String("format", "csv", "csv or json")
	carrier := fs.String("carrier-cdr", "", "the carrier's CDR export, CSV with a header (reconcile)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *format != "csv" && *format != "json" {
		return &exitError{2, fmt.Errorf("--format %q: use csv or json", *format)}
	}
	from, err := parseWhen("--from", *fromS)
	if err != nil {
		return err
	}
	to, err := parseWhen("--to", *toS)
	if err != nil {
		return err
	}
	e, err := openEnv(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer e.Close()
	cfg, q := e.cfg, e.queue()

	if sub == "report" {
		rep, err := billing.Build(ctx, q, billing.Filter{From: from, To: to, App: *app})
		if err != nil {
			return err
		}
		if *format == "json" {
			return rep.WriteJSON(stdout)
		}
		return rep.WriteCSV(stdout)
	}

	if *carrier == "" {
		return &exitError{2, errors.New("usage: vms billing reconcile --carrier-cdr FILE.csv [--from T --to T] [--format csv|json]")}
	}
	f, err := os.Open(*carrier)
	if err != nil {
		return &exitError{2, err}
	}
	defer f.Close()
	rc := cfg.API.Billing.Reconcile
	theirs, err := billing.ParseCarrier(f, rc)
	if err != nil {
		return &exitError{2, err}
	}
	if from.IsZero() && to.IsZero() {
		from, to = billing.Window(theirs)
	}
	ours, err := billing.CDRs(ctx, q, billing.Filter{From: from, To: to, App: *app})
	if err != nil {
		return err
	}
	res := billing.Reconcile(ours, theirs, rc)
	if *format == "json" {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "period          %s .. %s\n", fmtWhen(from), fmtWhen(to))
		fmt.Fprintf(stdout, "calls           %d (matched %d)\n", res.Calls, res.Matched)
		fmt.Fprintf(stdout, "missing at carrier %d: %v\n", len(res.MissingAtCarrier), res.MissingAtCarrier)
		fmt.Fprintf(stdout, "missing ours    %d: %v\n", len(res.MissingOurs), res.MissingOurs)
		fmt.Fprintf(stdout, "differences     %d\n", len(res.Differences))
		for _, d := range res.Differences {
			fmt.Fprintf(stdout, "  %s: ours %d ms (%d min), carrier %g s (%d min), line %d\n",
				d.ID, d.OurMS, d.OurMinutes, d.CarrierSeconds, d.CarrierMinutes, d.CarrierLine)
		}
		fmt.Fprintf(stdout, "error rate      %.2f‰ (tolerance %.2f‰)\n", res.ErrorPermille, res.TolerancePermille)
	}
	if !res.WithinTolerance {
		return &exitError{exitOverTolerance, fmt.Errorf("billing error rate %.2f‰ exceeds the tolerance %.2f‰ (api.billing.reconcile.tolerance_permille)",
			res.ErrorPermille, res.TolerancePermille)}
	}
	return nil
}

func parseWhen(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, &exitError{2, fmt.Errorf("%s %q: use RFC 3339 (2026-03-01T00:00:00Z) or a UTC day (2026-03-01)", flag, s)}
}

func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "(open)"
	}
	return t.UTC().Format(time.RFC3339)
}
