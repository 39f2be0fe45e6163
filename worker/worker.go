// Package worker runs the vms pipeline for each message asynq hands it:
// load the record, render the audio, claim the message (queued → dialing,
// atomically), place the call, and report the outcome.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/routing"
	"github.com/vms-project/vms/telephony"
	"github.com/vms-project/vms/templates"
	"github.com/vms-project/vms/tts"
)

// Speech says how messages are spoken.
type Speech struct {
	// CodePrefix is spoken before a code's digits, per language.
	CodePrefix map[string]string
	// Voices maps a language to a TTS voice.
	Voices map[string]string
	// RepeatPause is the silence between repetitions.
	RepeatPause time.Duration
	// SegmentGap is the silence between the segments of a mixed template.
	SegmentGap time.Duration
	// LanguageEngines maps a language to the TTS engine of its templates.
	LanguageEngines map[string]string
	// ConfirmText is the acknowledgement of a template's confirm key, per language.
	ConfirmText map[string]string
}

// message is what a call plays: the audio per codec, the template's key
// actions and the acknowledgement played after the confirm key.
type message struct {
	audio   map[tts.Codec]*tts.Audio
	actions map[string]string
	ack     map[tts.Codec]*tts.Audio
}

// Handler processes TaskSend tasks. It implements asynq.Handler.
type Handler struct {
	Queue    *queue.Client
	Dialer   *telephony.Dialer
	Renderer *tts.Renderer
	// Clips loads, checks (against their pins) and prepares the recordings
	// of audio and mixed templates (audio.go).
	Clips     *audio.Clips
	Templates templates.Registry
	// Suppressor records a callee's opt-out key (the policy engine).
	Suppressor interface {
		Suppress(ctx context.Context, app, number, reason string) error
	}
	// Router picks the trunks of a call, holds the shared channel and
	// calls-per-second limits and trunk health (routing/).
	Router *routing.Router
	// Redial says which outcomes are dialled again, per message kind.
	Redial routing.RedialPolicy
	// LimitWait bounds the wait for a saturated trunk before the task is
	// rescheduled (a retry that is not counted as a failure).
	LimitWait   time.Duration
	Speech      Speech
	RingTimeout time.Duration
	// MediaTimeout ends an answered call whose callee sends no RTP (0: off).
	MediaTimeout time.Duration
	MaxDuration  time.Duration
	Log          *slog.Logger
}

// ProcessTask runs one message. A message with bad data is archived with its
// reason (asynq.SkipRetry), never retried forever; only Redis errors are
// returned for asynq to retry.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	m, attempt, err := queue.DecodeTask(t.Payload())
	if err != nil || m.ID == "" {
		return fmt.Errorf("task payload is not a vms message (%v): %w", err, asynq.SkipRetry)
	}
	log := h.Log.With("message_id", m.ID, "to", queue.MaskNumber(m.To), "kind", m.Kind, "attempt", attempt)

	rec, err := h.Queue.Get(ctx, m.ID)
	if err != nil {
		return fmt.Errorf("load record: %w", err)
	}
	if rec.Status != queue.StatusQueued || rec.Attempt != attempt-1 {
		// A redelivery: let Claim settle what happened to the first delivery.
		return h.claimOnly(ctx, log, m.ID, attempt)
	}

	// Render before claiming, so a worker that dies while synthesizing
	// leaves the message queued rather than unknown.
	msg, err := h.render(ctx, m)
	if err != nil {
		log.Error("message cannot be played", "err", err)
		if aerr := h.Queue.Abandon(ctx, m.ID, queue.StatusFailed, err.Error()); aerr != nil {
			return aerr
		}
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}

	// Policy again, right before dialing, since time has passed since
	// enqueue: blocked or deferred, never dialled (policy.go).
	if err := h.Queue.CheckBeforeDial(ctx, m); err != nil {
		return policyOutcome(log, err)
	}

	// Routing and limits come before the claim too: a saturated trunk
	// reschedules the task while the message is still queued (routing.go).
	trunks, slot, err := h.route(ctx, log, m)
	if err != nil {
		return err
	}

	outcome, _, err := h.Queue.Claim(ctx, m.ID, attempt)
	if err != nil {
		slot.Release()
		return fmt.Errorf("claim: %w", err)
	}
	if outcome != queue.Claimed {
		slot.Release()
		log.Warn("message was already handled; not dialling", "outcome", outcome)
		if outcome == queue.AttemptNotDue {
			return fmt.Errorf("attempt %d runs before attempt %d was recorded; retrying later", attempt, attempt-1)
		}
		return nil
	}
	return h.dial(ctx, log, m, attempt, msg, trunks, slot)
}

func (h *Handler) claimOnly(ctx context.Context, log *slog.Logger, id string, attempt int) error {
	outcome, rec, err := h.Queue.Claim(ctx, id, attempt)
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if outcome == queue.AttemptNotDue {
		return fmt.Errorf("attempt %d runs before attempt %d was recorded; retrying later", attempt, attempt-1)
	}
	if outcome == queue.Claimed {
		// Cannot happen: the record was not queued a moment ago.
		return h.Queue.Abandon(ctx, id, queue.StatusUnknown, "record changed state during redelivery; not dialled")
	}
	log.Warn("redelivered message not dialled again", "status", rec.Status)
	return nil
}

// render returns the message's audio for each codec of the trunks, with the
// template's key actions.
func (h *Handler) render(ctx context.Context, m queue.Message) (*message, error) {
	p := tts.Prompt{Repeat: m.PlayTimes, Pause: h.Speech.RepeatPause}
	msg := &message{}
	language := m.Language
	switch m.Kind {
	case queue.KindCode:
		prefix, ok := h.Speech.CodePrefix[m.Language]
		if !ok {
			return nil, fmt.Errorf("no code.prefix_text for language %q", m.Language)
		}
		p.Text, p.Voice = tts.CodeText(prefix, m.Code), h.Speech.Voices[m.Language]
		h.languageEngine(&p, m.Language) // audio.go
	case queue.KindTTS:
		// Checked again here: the template may have changed since enqueue.
		if err := queue.CheckTemplate(ctx, h.Templates, m.TemplateID, m.Params); err != nil {
			return nil, err
		}
		t, _ := h.Templates.Template(ctx, m.TemplateID)
		if err := h.templatePrompt(ctx, t, m.Params, &p); err != nil { // audio.go
			return nil, err
		}
		language = t.Language
		msg.actions = keyActions(t)
	default:
		return nil, fmt.Errorf("unknown message kind %q", m.Kind)
	}
	if p.Voice == "" {
		return nil, fmt.Errorf("no voice for language %q: add it to tts.voices", m.Language)
	}
	var err error
	if msg.audio, err = h.renderAll(ctx, p); err != nil {
		return nil, err
	}
	if slices.Contains(slices.Collect(maps.Values(msg.actions)), string(templates.KeyConfirm)) {
		text := h.Speech.ConfirmText[language]
		if text == "" {
			return nil, fmt.Errorf("template %s has a confirm key but call.confirm_text has no %q text", m.TemplateID, language)
		}
		// Spoken like the template's own speech.
		voice := tts.Segment{Text: text, Voice: p.Voice}
		for _, seg := range p.Segments {
			if seg.Clip == nil {
				voice.Voice, voice.Engine, voice.Rate = seg.Voice, seg.Engine, seg.Rate
				break
			}
		}
		if voice.Voice == "" {
			voice.Voice = h.Speech.Voices[language]
		}
		if msg.ack, err = h.renderAll(ctx, tts.Prompt{Segments: []tts.Segment{voice}, Repeat: 1}); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// renderAll renders p for every codec any trunk offers.
func (h *Handler) renderAll(ctx context.Context, p tts.Prompt) (map[tts.Codec]*tts.Audio, error) {
	out := map[tts.Codec]*tts.Audio{}
	for _, c := range h.codecs() {
		a, err := h.Renderer.Render(ctx, p, c)
		if err != nil {
			return nil, fmt.Errorf("render audio: %w", err)
		}
		out[c] = a
	}
	return out, nil
}

// keyActions is the template's key → action map in the dialer's words.
func keyActions(t templates.Template) map[string]string {
	if len(t.KeyActions) == 0 {
		return nil
	}
	out := make(map[string]string, len(t.KeyActions))
	for k, a := range t.KeyActions {
		out[k] = string(a)
	}
	return out
}

// finish writes the outcome. It runs on its own context: a worker that is
// stopping must still record the calls it made.
func (h *Handler) finish(m queue.Message, attempt int, trunk string, res telephony.Result, tries []queue.Attempt, next *queue.NextAttempt) error {
	rec := &queue.Record{Message: m, Status: res.Status, Attempt: attempt, Reason: res.Reason,
		Trunk: trunk, CallID: res.CallID, Codec: string(res.Codec),
		SIPCode: res.SIPCode, SIPReason: res.SIPReason, HungUpBy: res.HungUpBy,
		PlayedToEnd: res.PlayedToEnd, AudioMS: res.AudioMS,
		InviteAt: res.InviteAt, RingingAt: res.RingingAt, AnsweredAt: res.AnsweredAt, EndedAt: res.EndedAt,
		BillableMS: res.BillableMS, Keys: res.Keys, Confirmed: res.Confirmed, OptedOut: res.OptedOut}
	var err error
	for try := 0; try < 5; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = h.Queue.FinishAttempt(ctx, rec, tries, next)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	// The redelivery will find the record in a call state and mark it
	// unknown; it will not dial again.
	return fmt.Errorf("record the outcome of call %s: %w", res.CallID, err)
}

// progress writes a call's milestones to the record as they happen.
type progress struct {
	q     *queue.Client
	id    string
	trunk string
	log   *slog.Logger
}

func (p *progress) write(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
		p.log.Warn("record call progress", "err", err)
	}
}

func (p *progress) InviteSent(at time.Time, d telephony.Dialog) {
	p.write(func(ctx context.Context) error { return p.q.MarkInviteSent(ctx, p.id, at, p.trunk, d.CallID) })
}
func (p *progress) Ringing(at time.Time) {
	p.write(func(ctx context.Context) error { return p.q.MarkRinging(ctx, p.id, at) })
}
func (p *progress) Answered(at time.Time, _ telephony.Dialog) {
	p.write(func(ctx context.Context) error { return p.q.MarkAnswered(ctx, p.id, at) })
}
