package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/audio/audioconf"
	"github.com/vms-project/vms/templates"
	"github.com/vms-project/vms/worker"
)

// cmdTemplateAudio runs `vms template audio upload ID FILE`: it checks the recording
// (decodes it, refusing corrupt, empty, over-long or unsupported audio), puts it in
// the shared audio store (audio.store.dir, or Redis) and makes template ID play it:
// a new or tts template becomes source audio; a mixed template gets it in segment
// --segment N. The template is then pending until approved, which pins the
// recording's SHA-256.
func cmdTemplateAudio(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := subcommand(args, "usage: vms template audio upload ID FILE [--segment N] [--text TRANSCRIPT] [--lang L] [--by NAME] [--json]", "upload"); err != nil {
		return err
	}
	fs, cfgPath := newFlags("template audio upload", stderr)
	segment := fs.Int("segment", 0, "mixed template: the segment (1-based) that plays the recording")
	text := fs.String("text", "", "what the recording says, for the reviewer")
	lang := fs.String("lang", "", "language of a new template")
	by := fs.String("by", whoami(), "who uploads (audit log)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return &exitError{2, errors.New("usage: vms template audio upload ID FILE")}
	}
	id, file := pos[0], pos[1]
	if err := templates.CheckID(id); err != nil {
		return &exitError{2, err}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return &exitError{2, err}
	}
	if int64(len(data)) > cfg.Audio.Fetch.MaxBytes {
		return &exitError{2, fmt.Errorf("%s: %d bytes is more than audio.fetch.max_bytes (%d)", file, len(data), cfg.Audio.Fetch.MaxBytes)}
	}
	_, info, err := audio.Prepare(data, audio.Options{MaxDuration: cfg.Audio.MaxDuration.D(), Loudness: cfg.Audio.LoudnessTarget})
	if err != nil {
		return &exitError{2, fmt.Errorf("%s refused: %w", file, err)}
	}
	e, err := connectEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	rdb := e.rdb
	ref, err := audioconf.Store(cfg, rdb).Put(ctx, data)
	if err != nil {
		return err
	}
	st := worker.PolicyFor(cfg, rdb, nil).Templates()
	t, err := st.Template(ctx, id)
	switch {
	case errors.Is(err, templates.ErrNotFound):
		t = templates.Template{ID: id, Source: templates.SourceAudio, Audio: ref, Text: *text, Language: *lang}
	case err != nil:
		return err
	case t.SourceOf() == templates.SourceMixed:
		if *segment < 1 || *segment > len(t.Segments) {
			return &exitError{2, fmt.Errorf("template %s is mixed with %d segments: say which one plays the recording with --segment N", id, len(t.Segments))}
		}
		t.Segments[*segment-1] = templates.Segment{Audio: ref, Text: *text}
		t.Text = ""
	default:
		if templates.HasPlaceholders(t.Text) && t.SourceOf() == templates.SourceTTS {
			return &exitError{2, fmt.Errorf("template %s has placeholders: a recording cannot say them; make it mixed (segments) instead", id)}
		}
		if t.SourceOf() == templates.SourceTTS && *text == "" {
			*text = t.Text // the recording replaces the text it says
		}
		t.Source, t.Audio, t.Segments = templates.SourceAudio, ref, nil
		if *text != "" {
			t.Text = *text
		}
	}
	t, err = st.Put(ctx, t, *by)
	if err != nil {
		return &exitError{2, err}
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"ref": ref, "sha256": audio.SHA256(data), "format": info.Format,
			"rate": info.Rate, "channels": info.Channels, "duration_ms": info.Trimmed.Milliseconds(), "template": t})
	}
	fmt.Fprintf(stdout, "uploaded   %s (%s, %d Hz, %d ch, %s, %s after trimming silence)\n", ref, info.Format, info.Rate, info.Channels, info.Original.Round(1e6), info.Trimmed.Round(1e6))
	printTemplate(stdout, t)
	fmt.Fprintf(stdout, "next       vms template approve %s   (pins the recording's SHA-256)\n", id)
	return nil
}

// printTemplateAudio adds a template's sound to `vms template show`.
func printTemplateAudio(w io.Writer, t templates.Template) {
	if t.SourceOf() == templates.SourceTTS && t.Engine == "" && t.Rate == 0 && t.Volume == 0 {
		return
	}
	fmt.Fprintf(w, "source     %s\n", t.SourceOf())
	if t.Audio != "" {
		fmt.Fprintf(w, "audio      %s%s\n", audio.RedactURL(t.Audio), pinNote(t, t.Audio))
	}
	for i, s := range t.Segments {
		if s.Audio != "" {
			fmt.Fprintf(w, "segment %-2s audio %s%s\n", strconv.Itoa(i+1), audio.RedactURL(s.Audio), pinNote(t, s.Audio))
		} else {
			fmt.Fprintf(w, "segment %-2s tts   %s\n", strconv.Itoa(i+1), s.Text)
		}
	}
	if t.Engine != "" || t.Rate != 0 || t.Volume != 0 {
		fmt.Fprintf(w, "speech     engine %q, rate %g, volume %+g dB\n", t.Engine, t.Rate, t.Volume)
	}
}

func pinNote(t templates.Template, ref string) string {
	if sum := t.Pins[ref]; sum != "" {
		return " (pinned sha256 " + sum[:12] + "…)"
	}
	return " (not pinned: approve to pin)"
}
