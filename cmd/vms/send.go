package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"

	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/worker"
)

func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	kind, err := subcommand(args, "usage: vms send code|tts ... (see vms help)", "code", "tts")
	if err != nil {
		return err
	}
	fs, cfgPath := newFlags("send "+kind, stderr)
	to := fs.String("to", "", "called number in E.164 form, e.g. +8613800138000")
	id := fs.String("id", "", "message ID (idempotency key); generated when empty")
	playTimes := fs.Int("play-times", 0, "how many times the message is played, 1-3 (default 2)")
	asJSON := fs.Bool("json", false, "print the message record as JSON")
	reveal := fs.Bool("reveal", false, "print the full number and code (written to the audit log)")
	app := fs.String("app", "", "send on behalf of this app of api.apps (its policy and callback key); default: no app")
	code := fs.String("code", "", "verification code, 4-10 digits (send code)")
	lang := fs.String("lang", "", "language of the code prompt (send code; default code.language)")
	template := fs.String("template", "", "template ID (send tts)")
	var params multiFlag
	fs.Var(&params, "param", "template parameter, once per placeholder in order (send tts)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	e, err := openEnv(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer e.Close()
	if _, ok := e.cfg.API.App(*app); *app != "" && !ok {
		return &exitError{2, fmt.Errorf("--app %q is not in api.apps of the config", *app)}
	}
	q := e.queue()

	var rec *queue.Record
	if kind == "code" {
		rec, err = q.SendCode(ctx, queue.CodeRequest{ID: *id, To: *to, Code: *code, PlayTimes: *playTimes, Language: *lang, AppID: *app})
	} else {
		rec, err = q.SendTTS(ctx, queue.TTSRequest{ID: *id, To: *to, TemplateID: *template, Params: params, PlayTimes: *playTimes, AppID: *app})
	}
	var inputErr *queue.InputError
	switch {
	case errors.As(err, &inputErr):
		return &exitError{2, fmt.Errorf("%s (%s); nothing was enqueued", inputErr.Msg, inputErr.Code)}
	case errors.Is(err, queue.ErrDuplicate) && rec != nil:
		// Idempotent: the same ID is one message, one call.
		fmt.Fprintf(stderr, "vms: %v\n", err)
	case err != nil:
		return err
	}
	if err := conceal(ctx, e, rec, *reveal); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, struct {
			*queue.Record
			Duplicate bool `json:"duplicate"`
		}{rec, err != nil})
	}
	fmt.Fprintln(stdout, rec.ID)
	return nil
}

// conceal masks the number and the code of rec for output, or, with
// reveal, leaves them and records in the audit log who saw them.
func conceal(ctx context.Context, e *env, rec *queue.Record, reveal bool) error {
	if !reveal {
		rec.To = queue.MaskNumber(rec.To)
		rec.Code = strings.Repeat("*", len(rec.Code))
		return nil
	}
	who := "cli"
	if u, err := user.Current(); err == nil {
		who = "cli:" + u.Username
	}
	_, err := worker.PolicyFor(e.cfg, e.rdb, nil).Audit().Record(ctx, "record.revealed", who, rec.Key(), nil)
	if err != nil {
		return fmt.Errorf("--reveal is audited, and the audit log could not be written: %w", err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
