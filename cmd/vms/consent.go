package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

func cmdConsent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "usage: vms consent add|remove|check --app APP --to E164 [--source HOW] [--at RFC3339]", "add", "remove", "check")
	if err != nil {
		return err
	}
	fs, cfgPath := newFlags("consent "+sub, stderr)
	app := fs.String("app", "default", "app the number agreed to")
	to := fs.String("to", "", "number, E.164")
	source := fs.String("source", "", "how consent was given (add; required)")
	atS := fs.String("at", "", "when consent was given, RFC 3339 (add; default now)")
	by := fs.String("by", whoami(), "who records it")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var at time.Time
	if *atS != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, *atS); err != nil {
			return &exitError{2, fmt.Errorf("--at %q: use RFC 3339, e.g. 2026-05-01T10:00:00+08:00", *atS)}
		}
	}
	e, closeFn, err := openPolicy(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	switch sub {
	case "add":
		c, err := e.AddConsent(ctx, *app, *to, *source, at, *by)
		if err != nil {
			return &exitError{2, err}
		}
		if *asJSON {
			return printJSON(stdout, c)
		}
		fmt.Fprintf(stdout, "consent recorded: %s for app %s (%s, given %s)\n", c.Number, c.App, c.Source, c.At.Format(time.RFC3339))
	case "remove":
		ok, err := e.RemoveConsent(ctx, *app, *to, *by)
		if err != nil {
			return &exitError{2, err}
		}
		if !ok {
			return &exitError{3, fmt.Errorf("no consent recorded for that number and app %s", *app)}
		}
		fmt.Fprintln(stdout, "consent removed")
	case "check":
		c, err := e.ConsentOf(ctx, *app, *to)
		if err != nil {
			return &exitError{2, err}
		}
		s, err := e.SuppressionOf(ctx, *app, *to)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := printJSON(stdout, map[string]any{"app": *app, "mode": e.ConsentMode(*app), "consent": c, "suppression": s}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "app %s consent mode: %s\n", *app, e.ConsentMode(*app))
			if c != nil {
				fmt.Fprintf(stdout, "consent: %s, given %s via %s (recorded by %s)\n", c.Number, c.At.Format(time.RFC3339), c.Source, c.RecordedBy)
			} else {
				fmt.Fprintln(stdout, "consent: none")
			}
			if s != nil {
				fmt.Fprintf(stdout, "suppressed: %s list, %s (%s)\n", s.App, s.Reason, s.Source)
			}
		}
		if c == nil {
			return &exitError{3, errors.New("no consent recorded")}
		}
	}
	return nil
}
