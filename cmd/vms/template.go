package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/templates"
	"github.com/vms-project/vms/worker"
)

// openPolicy loads the config and returns the deployment's policy engine.
func openPolicy(ctx context.Context, cfgPath string) (*policy.Engine, func(), error) {
	env, err := openEnv(ctx, cfgPath)
	if err != nil {
		return nil, nil, err
	}
	e := worker.PolicyFor(env.cfg, env.rdb, nil)
	if err := e.Start(ctx); err != nil {
		env.Close()
		return nil, nil, err
	}
	return e, env.Close, nil
}

func whoami() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}

func cmdTemplate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &exitError{2, errors.New("usage: vms template add|list|show|approve|reject|disable ... (see vms help)")}
	}
	sub := args[0]
	if sub == "audio" {
		return cmdTemplateAudio(ctx, args[1:], stdout, stderr) // template_audio.go
	}
	fs, cfgPath := newFlags("template "+sub, stderr)
	by := fs.String("by", whoami(), "who acts (recorded as reviewer and in the audit log)")
	asJSON := fs.Bool("json", false, "print JSON")
	reason := fs.String("reason", "", "reason (reject: required)")
	version := fs.Int("version", 0, "approve/reject only this version (what you reviewed)")
	force := fs.Bool("force", false, "approve despite automated review errors (audited)")
	id := fs.String("id", "", "template ID (add)")
	text := fs.String("text", "", "text with {1}, {2}... placeholders (add)")
	name := fs.String("name", "", "human name (add)")
	kind := fs.String("kind", "notify", "code or notify (add)")
	lang := fs.String("lang", "", "language, e.g. zh or en (add)")
	voice := fs.String("voice", "", "TTS voice overriding the language's (add)")
	urgent := fs.Bool("urgent", false, "not deferred by quiet hours (add)")
	var params, keys multiFlag
	fs.Var(&params, "param", "constraint of a placeholder, in order: as=digits,max_len=6,digits_only,allow_urls (add; repeat)")
	fs.Var(&keys, "key", "key action DIGIT=repeat|confirm|optout (add; repeat)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	e, closeFn, err := openPolicy(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer closeFn()
	st := e.Templates()
	r := templates.Review{By: *by, Reason: *reason, Version: *version, Force: *force}
	var t templates.Template
	switch sub {
	case "list":
		list, err := st.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, list)
		}
		fmt.Fprintf(stdout, "%-20s %-9s %-7s %-6s %-3s %s\n", "ID", "STATUS", "KIND", "LANG", "V", "REVIEWER")
		for _, t := range list {
			fmt.Fprintf(stdout, "%-20s %-9s %-7s %-6s %-3d %s\n", t.ID, t.Status, t.KindOf(), t.Language, t.Version, t.Reviewer)
		}
		return nil
	case "add":
		t = templates.Template{ID: *id, Name: *name, Kind: templates.Kind(*kind), Text: *text, Language: *lang, Voice: *voice, Urgent: *urgent}
		for _, p := range params {
			prm, err := parseParam(p)
			if err != nil {
				return &exitError{2, err}
			}
			t.Params = append(t.Params, prm)
		}
		for _, k := range keys {
			key, action, _ := strings.Cut(k, "=")
			a, err := templates.ParseKeyAction(key, action)
			if err != nil {
				return &exitError{2, err}
			}
			if t.KeyActions == nil {
				t.KeyActions = map[string]templates.KeyAction{}
			}
			t.KeyActions[key] = a
		}
		t, err = st.Put(ctx, t, *by)
	default:
		if len(pos) != 1 {
			return &exitError{2, fmt.Errorf("usage: vms template %s ID", sub)}
		}
		switch sub {
		case "show":
			t, err = st.Template(ctx, pos[0])
		case "approve":
			t, err = st.Approve(ctx, pos[0], r)
		case "reject":
			t, err = st.Reject(ctx, pos[0], r)
		case "disable":
			t, err = st.Disable(ctx, pos[0], r)
		default:
			return &exitError{2, fmt.Errorf("unknown template command %q: use add, list, show, approve, reject, disable", sub)}
		}
	}
	if errors.Is(err, templates.ErrNotFound) {
		return &exitError{3, err}
	} else if errors.Is(err, templates.ErrReview) || (err != nil && sub == "add") {
		return &exitError{2, err}
	} else if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, t)
	}
	printTemplate(stdout, t)
	return nil
}

func parseParam(s string) (templates.Param, error) {
	var p templates.Param
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "as":
			p.As = v
		case "max_len":
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, fmt.Errorf("--param %q: max_len needs a number", s)
			}
			p.MaxLen = n
		case "digits_only":
			p.DigitsOnly = true
		case "allow_urls":
			p.AllowURLs = true
		case "", "text":
		default:
			return p, fmt.Errorf("--param %q: unknown constraint %q (as=, max_len=, digits_only, allow_urls)", s, k)
		}
	}
	return p, p.Validate()
}

func printTemplate(w io.Writer, t templates.Template) {
	fmt.Fprintf(w, "id         %s\nname       %s\nkind       %s\nlanguage   %s\nstatus     %s (version %d)\n", t.ID, t.Name, t.KindOf(), t.Language, t.Status, t.Version)
	if t.Reviewer != "" {
		fmt.Fprintf(w, "reviewed   by %s at %s\n", t.Reviewer, t.ReviewedAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	if t.Reason != "" {
		fmt.Fprintf(w, "reason     %s\n", t.Reason)
	}
	fmt.Fprintf(w, "text       %s\n", t.Text)
	printTemplateAudio(w, t) // template_audio.go
	for i := range t.Params {
		p := t.Param(i + 1)
		fmt.Fprintf(w, "{%d}        as %s, max %d, digits only %v, urls %v\n", i+1, p.As, p.MaxLen, p.DigitsOnly, p.AllowURLs)
	}
	for k, a := range t.KeyActions {
		fmt.Fprintf(w, "key %s      %s\n", k, a)
	}
	if t.Urgent {
		fmt.Fprintln(w, "urgent     yes (not deferred by quiet hours)")
	}
	if len(t.Findings) == 0 {
		fmt.Fprintln(w, "checks     all automated review checks passed")
	}
	for _, f := range t.Findings {
		fmt.Fprintf(w, "check      %s %s: %s\n", f.Severity, f.Check, f.Message)
	}
}
