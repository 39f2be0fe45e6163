package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vms-project/vms/queue"
)

// Exit codes of vms status.
const (
	exitNotFound = 3
	exitTimeout  = 4
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("status", stderr)
	wait := fs.Duration("wait", 0, "block until the message is terminal or this much time passes")
	asJSON := fs.Bool("json", false, "print the record as JSON")
	reveal := fs.Bool("reveal", false, "print the full number and code (written to the audit log)")
	app := fs.String("app", "", "the app that sent the message (message IDs are per app; default: messages sent without one, e.g. by vms send)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{2, errors.New("usage: vms status MSGID [--app APP] [--wait DURATION] [--json]")}
	}
	id := queue.Key(*app, pos[0])
	e, err := openEnv(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer e.Close()
	q := e.queue()

	rec, err := q.Get(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return &exitError{exitNotFound, fmt.Errorf("message %s not found (unknown ID, or its record expired after redis.retention)", id)}
	} else if err != nil {
		return err
	}
	if *wait > 0 && !rec.Status.Terminal() {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		rec, err = q.Watch(wctx, id, nil)
		if errors.Is(err, context.DeadlineExceeded) {
			rec, _ = q.Get(ctx, id)
			if rec != nil && conceal(ctx, e, rec, *reveal) == nil {
				printRecord(stdout, rec, *asJSON)
			}
			return &exitError{exitTimeout, fmt.Errorf("message %s is still %s after %s", id, statusOf(rec), *wait)}
		} else if err != nil {
			return err
		}
	}
	events, err := q.Events(ctx, id)
	if err != nil {
		return err
	}
	if err := conceal(ctx, e, rec, *reveal); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, struct {
			*queue.Record
			Events []queue.Event `json:"events"`
		}{rec, events})
	}
	printRecord(stdout, rec, false)
	fmt.Fprintln(stdout, "history")
	for _, ev := range events {
		fmt.Fprintf(stdout, "  %s  attempt %d  %s", ev.At.Format("2006-01-02T15:04:05.000Z07:00"), ev.Attempt, ev.Status)
		if ev.SIPCode != 0 {
			fmt.Fprintf(stdout, " (SIP %d)", ev.SIPCode)
		}
		if ev.Reason != "" {
			fmt.Fprintf(stdout, ": %s", ev.Reason)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func statusOf(r *queue.Record) queue.Status {
	if r == nil {
		return "?"
	}
	return r.Status
}

func printRecord(w io.Writer, r *queue.Record, asJSON bool) {
	if asJSON {
		_ = printJSON(w, r)
		return
	}
	fmt.Fprintf(w, "message    %s (%s to %s)\n", r.ID, r.Kind, queue.MaskNumber(r.To))
	fmt.Fprintf(w, "status     %s\n", r.Status)
	if r.Reason != "" {
		fmt.Fprintf(w, "reason     %s\n", r.Reason)
	}
	if r.SIPCode != 0 {
		fmt.Fprintf(w, "sip        %d %s\n", r.SIPCode, r.SIPReason)
	}
	if r.Trunk != "" {
		fmt.Fprintf(w, "trunk      %s  call-id %s  codec %s\n", r.Trunk, r.CallID, r.Codec)
	}
	if r.HungUpBy != "" {
		fmt.Fprintf(w, "hung up by %s  played to end: %v  audio %d ms\n", r.HungUpBy, r.PlayedToEnd, r.AudioMS)
	}
	for _, ts := range []struct {
		name string
		t    time.Time
	}{{"enqueued", r.EnqueuedAt}, {"invite", r.InviteAt}, {"first 18x", r.RingingAt}, {"answered", r.AnsweredAt}, {"ended", r.EndedAt}} {
		if !ts.t.IsZero() {
			fmt.Fprintf(w, "%-10s %s\n", ts.name, ts.t.Format("2006-01-02 15:04:05.000 MST"))
		}
	}
	if r.Status.Terminal() {
		fmt.Fprintf(w, "billable   %d ms = %d min\n", r.BillableMS, r.BillableMinutes)
	}
	for _, k := range r.Keys {
		fmt.Fprintf(w, "key        %s at %s (%s)\n", k.Key, k.At.Format("15:04:05.000"), k.Via)
	}
	if r.Confirmed || r.OptedOut {
		fmt.Fprintf(w, "confirmed  %v  opted out: %v\n", r.Confirmed, r.OptedOut)
	}
	if len(r.Attempts) > 1 {
		for _, a := range r.Attempts {
			fmt.Fprintf(w, "attempt    %d.%d %s: %s %d %s\n", a.Attempt, a.Try, a.Trunk, a.Status, a.SIPCode, a.Reason)
		}
	}
}
