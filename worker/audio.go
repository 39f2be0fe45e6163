package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/audio/audioconf"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/templates"
	"github.com/vms-project/vms/tts"
)

// newAudio builds the renderer (every configured engine, the shared bounded cache)
// and the recordings' loader of a worker.
func newAudio(cfg *config.Config, rdb redis.UniversalClient, log *slog.Logger) (*tts.Renderer, *audio.Clips, error) {
	r, err := audioconf.Renderer(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	clips, err := audioconf.Clips(cfg, rdb, r, log)
	if err != nil {
		return nil, nil, err
	}
	return r, clips, nil
}

// unapprover is the part of the template registry (templates.Store) that takes an
// approval back.
type unapprover interface {
	Unapprove(ctx context.Context, id, digest, reason string) (templates.Template, error)
}

// templatePrompt sets p's segments to what template t plays with params: its TTS texts
// with the parameters read as their `as` says, in t's voice, engine (or its language's),
// rate and volume; its recordings loaded, checked against the SHA-256 pinned at
// approval, and prepared. A recording that differs from its pin (or was never pinned)
// makes the template unsendable: it goes back to pending with the reason.
func (h *Handler) templatePrompt(ctx context.Context, t templates.Template, params []string, p *tts.Prompt) error {
	parts, err := t.SpokenParts(params)
	if err != nil {
		return err
	}
	engine := t.Engine
	if engine == "" {
		engine = h.Speech.LanguageEngines[t.Language]
	}
	p.Voice, p.Gap = t.Voice, h.Speech.SegmentGap
	for _, part := range parts {
		if part.Audio == "" {
			p.Segments = append(p.Segments, tts.Segment{Text: part.Text, Voice: t.Voice, Engine: engine, Rate: t.Rate, Volume: t.Volume})
			continue
		}
		if h.Clips == nil {
			return fmt.Errorf("template %s plays a recording but this worker has no audio loader", t.ID)
		}
		pin := t.Pins[part.Audio]
		if pin == "" {
			reason := fmt.Sprintf("recording %s was never pinned (approved without a check of its audio, e.g. in the config file): approve the template again", audio.RedactURL(part.Audio))
			return h.unapprove(ctx, t, reason)
		}
		prep, err := h.Clips.Clip(ctx, part.Audio, pin)
		if errors.Is(err, audio.ErrChanged) {
			return h.unapprove(ctx, t, err.Error())
		}
		if err != nil {
			return fmt.Errorf("template %s: recording: %w", t.ID, err)
		}
		p.Segments = append(p.Segments, tts.Segment{Clip: prep.Clip, Volume: t.Volume})
	}
	return nil
}

// unapprove puts t back to pending with reason and returns the error that fails the
// message.
func (h *Handler) unapprove(ctx context.Context, t templates.Template, reason string) error {
	if u, ok := h.Templates.(unapprover); ok {
		if _, err := u.Unapprove(ctx, t.ID, t.Digest(), reason); err != nil {
			h.Log.Error("cannot set the template back to pending", "template", t.ID, "err", err)
		} else {
			h.Log.Warn("template back to pending: its recording changed since approval", "template", t.ID, "reason", reason)
		}
	}
	return fmt.Errorf("template %s is not sendable: %s", t.ID, reason)
}

// setClipChecker lets the template registry pin recordings on approval. Without it
// (the fetch cache directory cannot be created) approving a template with recordings
// is refused with the reason.
func setClipChecker(cfg *config.Config, rdb redis.UniversalClient, log *slog.Logger, st *templates.Store) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clips, err := audioconf.Clips(cfg, rdb, nil, log)
	if err != nil {
		log.Warn("recordings cannot be checked: templates with audio cannot be approved", "err", err)
		return
	}
	st.SetClipChecker(clips)
}

// WarmTemplate prepares the fixed parts of template t ahead of its first call: every
// recording (fetched, checked against its pin, decoded and cached) and every TTS text
// without placeholders (synthesized into the shared cache). Texts with placeholders
// depend on the message and are rendered when it is sent. It returns how many parts
// it warmed.
func (h *Handler) WarmTemplate(ctx context.Context, t templates.Template) (int, error) {
	engine := t.Engine
	if engine == "" {
		engine = h.Speech.LanguageEngines[t.Language]
	}
	n := 0
	for _, part := range t.Parts() {
		switch {
		case part.Audio != "":
			pin := t.Pins[part.Audio]
			if pin == "" {
				return n, fmt.Errorf("template %s: recording %s is not pinned: approve the template again", t.ID, audio.RedactURL(part.Audio))
			}
			if h.Clips == nil {
				return n, fmt.Errorf("template %s plays a recording but no audio loader is configured", t.ID)
			}
			if _, err := h.Clips.Clip(ctx, part.Audio, pin); err != nil {
				return n, fmt.Errorf("template %s: %w", t.ID, err)
			}
		case templates.HasPlaceholders(part.Text):
			continue
		default:
			seg := tts.Segment{Text: part.Text, Voice: t.Voice, Engine: engine, Rate: t.Rate, Volume: t.Volume}
			if _, err := h.Renderer.Render(ctx, tts.Prompt{Segments: []tts.Segment{seg}}, tts.PCMU); err != nil {
				return n, fmt.Errorf("template %s: %w", t.ID, err)
			}
		}
		n++
	}
	return n, nil
}

// codePrompt returns what code message m plays: its language's code.prefix_text
// and digits, in the language's voice and engine (audio.language_engines, when one is
// configured), play_times times with call.repeat_pause between.
func (h *Handler) codePrompt(m queue.Message) (tts.Code, error) {
	prefix, ok := h.Speech.CodePrefix[m.Language]
	if !ok {
		return tts.Code{}, fmt.Errorf("no code.prefix_text for language %q", m.Language)
	}
	voice := h.Speech.Voices[m.Language]
	if voice == "" {
		return tts.Code{}, fmt.Errorf("no voice for language %q: add it to tts.voices", m.Language)
	}
	return tts.Code{Prefix: prefix, Digits: m.Code, Language: m.Language, Voice: voice,
		Engine: h.Speech.LanguageEngines[m.Language], Repeat: m.PlayTimes, Pause: h.Speech.RepeatPause}, nil
}

// WarmCodes puts the code prefix and the ten digits of every language of
// code.prefix_text into the shared cache, so that no code call waits for synthesis.
// It calls done after each language with the clips it made ready and its error.
func (h *Handler) WarmCodes(ctx context.Context, done func(language string, clips int, err error)) (failed int) {
	for _, lang := range slices.Sorted(maps.Keys(h.Speech.CodePrefix)) {
		c, err := h.codePrompt(queue.Message{Language: lang})
		n := 0
		if err == nil {
			n, err = h.Renderer.WarmCode(ctx, c)
		}
		if err != nil {
			failed++
		}
		done(lang, n, err)
	}
	return failed
}
