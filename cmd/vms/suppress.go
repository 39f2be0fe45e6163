package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

func cmdSuppress(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "usage: vms suppress add|remove|list [--app APP] [--to E164] [--reason TEXT]", "add", "remove", "list")
	if err != nil {
		return err
	}
	fs, cfgPath := newFlags("suppress "+sub, stderr)
	app := fs.String("app", "", "app whose list it is (default: the global list, all apps)")
	to := fs.String("to", "", "number, E.164 (add, remove)")
	reason := fs.String("reason", "", "why (add; required)")
	by := fs.String("by", whoami(), "who acts")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	e, closeFn, err := openPolicy(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	switch sub {
	case "add":
		if *reason == "" {
			return &exitError{2, errors.New("--reason: say why the number is suppressed")}
		}
		s, err := e.AddSuppression(ctx, *app, *to, *reason, "operator", *by)
		if err != nil {
			return &exitError{2, err}
		}
		fmt.Fprintf(stdout, "suppressed %s on list %s\n", s.Number, s.App)
	case "remove":
		ok, err := e.RemoveSuppression(ctx, *app, *to, *by)
		if err != nil {
			return &exitError{2, err}
		}
		if !ok {
			return &exitError{3, errors.New("that number is not on the list")}
		}
		fmt.Fprintln(stdout, "removed")
	case "list":
		list, err := e.Suppressions(ctx, *app)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, list)
		}
		for _, s := range list {
			fmt.Fprintf(stdout, "%-16s %-8s %s  %s (%s)\n", s.Number, s.Source, s.At.Format(time.RFC3339), s.Reason, s.By)
		}
	}
	return nil
}
