package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/vms-project/vms/audio/audioconf"
	"github.com/vms-project/vms/templates"
	"github.com/vms-project/vms/worker"
)

// cmdTTS runs `vms tts warm`: it renders the fixed parts of every approved template
// (recordings and TTS texts without placeholders) and, unless --template narrows it
// down, the code prefix and the ten digits of every code language into the shared
// audio cache, so the first call of each template, and every code call, does not wait
// for synthesis or a download.
func cmdTTS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "usage: vms tts warm [-c FILE] [--template ID]... [-v]", "warm"); err != nil {
		return err
	}
	fs, cfgPath := newFlags("tts warm", stderr)
	verbose := fs.Bool("v", false, "debug logging")
	var only multiFlag
	fs.Var(&only, "template", "warm only this template (repeat)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := newLogger(stderr, *verbose, slog.LevelWarn)
	e, err := openEnv(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer e.Close()
	cfg, rdb := e.cfg, e.rdb
	renderer, err := audioconf.Renderer(cfg, log)
	if err != nil {
		return err
	}
	clips, err := audioconf.Clips(cfg, rdb, renderer, log)
	if err != nil {
		return err
	}
	st := worker.PolicyFor(cfg, rdb, log).Templates()
	list, err := st.List(ctx)
	if err != nil {
		return err
	}
	h := &worker.Handler{Renderer: renderer, Clips: clips, Templates: st, Log: log,
		Speech: worker.Speech{SegmentGap: cfg.Audio.SegmentGap.D(), LanguageEngines: cfg.Audio.LanguageEngines,
			CodePrefix: cfg.Code.PrefixText, Voices: cfg.TTS.Voices}}
	want := map[string]bool{}
	for _, id := range only {
		want[id] = true
	}
	var failed, warmed, codeFailed int
	start := time.Now()
	if len(only) == 0 {
		// Code calls are assembled from these clips (tts.Renderer.RenderCode).
		t0 := time.Now()
		var langs int
		codeFailed = h.WarmCodes(ctx, func(lang string, n int, err error) {
			name := "code:" + lang
			if err != nil {
				fmt.Fprintf(stdout, "%-20s FAILED after %d clip(s): %v\n", name, n, err)
			} else {
				langs++
				fmt.Fprintf(stdout, "%-20s prefix and digits, %d clip(s) ready in %s\n", name, n, time.Since(t0).Round(time.Millisecond))
			}
			t0 = time.Now()
		})
		fmt.Fprintf(stdout, "%d code language(s) warmed, %d failed\n", langs, codeFailed)
	}
	for _, t := range list {
		if len(want) > 0 && !want[t.ID] {
			continue
		}
		if t.Status != templates.StatusApproved {
			if want[t.ID] {
				fmt.Fprintf(stdout, "%-20s skipped: %s, not approved\n", t.ID, t.Status)
			}
			continue
		}
		delete(want, t.ID)
		t0 := time.Now()
		n, err := h.WarmTemplate(ctx, t)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%-20s FAILED after %d part(s): %v\n", t.ID, n, err)
			continue
		}
		warmed++
		fmt.Fprintf(stdout, "%-20s %d fixed part(s) ready in %s\n", t.ID, n, time.Since(t0).Round(time.Millisecond))
	}
	for id := range want {
		failed++
		fmt.Fprintf(stdout, "%-20s not found\n", id)
	}
	fmt.Fprintf(stdout, "%d template(s) warmed, %d failed, in %s (cache %s)\n", warmed, failed, time.Since(start).Round(time.Millisecond), cfg.TTS.CacheDir)
	if failed+codeFailed > 0 {
		return &exitError{1, fmt.Errorf("%d template(s) and %d code language(s) could not be warmed", failed, codeFailed)}
	}
	return nil
}
