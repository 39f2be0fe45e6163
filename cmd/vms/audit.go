package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, "usage: vms audit verify | vms audit export [--out FILE]", "verify", "export")
	if err != nil {
		return err
	}
	fs, cfgPath := newFlags("audit "+sub, stderr)
	out := fs.String("out", "", "export: write JSON lines to FILE (default stdout)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	e, closeFn, err := openPolicy(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	if sub == "verify" {
		rep, err := e.Audit().Verify(ctx)
		if err != nil {
			return err
		}
		if !rep.OK {
			return &exitError{1, fmt.Errorf("audit log broken after %d entries: %s", rep.Entries, rep.Problem)}
		}
		fmt.Fprintf(stdout, "audit log intact: %d entries, hash chain verified\n", rep.Entries)
		return nil
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := e.Audit().Export(ctx, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d entries\n", n)
	return nil
}
