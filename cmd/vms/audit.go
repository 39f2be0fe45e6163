package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vms-project/vms/audit"
	"github.com/vms-project/vms/worker"
)

const auditUsage = "usage: vms audit verify [--checkpoint FILE] | checkpoint [--out FILE] | sign-head [--checkpoint FILE] [--by NAME] | export [--out FILE]"

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand(args, auditUsage, "verify", "export", "checkpoint", "sign-head")
	if err != nil {
		return err
	}
	fs, cfgPath := newFlags("audit "+sub, stderr)
	out := fs.String("out", "", "export, checkpoint: write to FILE (default stdout)")
	cpPath := fs.String("checkpoint", "", "verify, sign-head: also check the log against this checkpoint (from vms audit checkpoint)")
	by := fs.String("by", whoami(), "sign-head: who re-signs the head (recorded)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var cp *audit.Head
	if *cpPath != "" {
		if sub != "verify" && sub != "sign-head" {
			return &exitError{2, errors.New(auditUsage)}
		}
		data, err := os.ReadFile(*cpPath)
		if err != nil {
			return &exitError{2, fmt.Errorf("checkpoint: %w", err)}
		}
		h, err := audit.ParseHead(data)
		if err != nil {
			return &exitError{2, fmt.Errorf("checkpoint %s: %w", *cpPath, err)}
		}
		cp = &h
	}
	// Not openPolicy: starting the engine writes to the log (templates
	// seeded, config.loaded), which must neither change what is verified
	// nor fail on the broken head it is asked to look at.
	env, err := openEnv(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer env.Close()
	log := worker.PolicyFor(env.cfg, env.rdb, nil).Audit()
	switch sub {
	case "verify":
		var rep audit.Report
		if cp != nil {
			rep, err = log.VerifyCheckpoint(ctx, *cp)
		} else {
			rep, err = log.Verify(ctx)
		}
		if err != nil {
			return err
		}
		if !rep.OK {
			return &exitError{1, fmt.Errorf("audit log broken after %d entries: %s", rep.Entries, strings.Join(rep.Problems, "; "))}
		}
		fmt.Fprintf(stdout, "audit log intact: %d entries, hash chain verified, head signed", rep.Entries)
		if cp != nil {
			fmt.Fprintf(stdout, ", checkpoint %s found in the log", cp)
		}
		fmt.Fprintln(stdout)
		return nil
	case "checkpoint":
		h, rep, err := log.Checkpoint(ctx)
		if err != nil {
			if !rep.OK && rep.Problem != "" {
				return &exitError{1, err}
			}
			return err
		}
		body, _ := json.Marshal(h)
		w, done, err := output(*out, stdout)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", body); err != nil {
			return err
		}
		if err := done(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "checkpoint of %d entries (%s): keep it outside Redis and pass it to vms audit verify --checkpoint\n", rep.Entries, h)
		return nil
	case "sign-head":
		rep, err := log.SignHead(ctx, cp, *by)
		if err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(stdout, "head signed at seq %d after %s\n", rep.Entries, rep.Problem)
		if cp == nil {
			fmt.Fprintln(stderr, "note: without --checkpoint, entries removed from the end before the head was lost cannot be told")
		}
		return nil
	}
	w, done, err := output(*out, stdout)
	if err != nil {
		return err
	}
	n, err := log.Export(ctx, w)
	if err != nil {
		return err
	}
	if err := done(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d entries\n", n)
	return nil
}

// output returns path's file (or stdout when path is empty) and the
// function that closes it.
func output(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}
