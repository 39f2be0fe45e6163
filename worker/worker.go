// Package worker runs the vms pipeline for each message asynq hands it:
// load the record, render the audio, claim the message (queued → dialing,
// atomically), place the call, and report the outcome.
package worker

import (
	"context"
	"encoding/json"
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
	// Owner names this worker process in the records of its calls (and
	// its heartbeat); Durability is what a claim waits for; Journal
	// keeps what Redis could not take.
	Owner      string
	Durability queue.Durability
	Journal    *journal
}

// ProcessTask runs one message. A message with bad data is archived with its
// reason (asynq.SkipRetry), never retried forever; only Redis errors are
// returned for asynq to retry.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	id, attempt, err := queue.DecodeTask(t.Payload())
	if err != nil {
		return fmt.Errorf("task payload is not a vms message (%v): %w", err, asynq.SkipRetry)
	}
	if n := h.Journal.Pending(); n > 0 {
		// Redis is behind on this worker's calls: take no new ones until
		// their records are in.
		return &queue.DeferError{Until: time.Now().Add(time.Second), Reason: fmt.Sprintf("%d call records wait in the worker's journal", n)}
	}
	rec, err := h.Queue.Get(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return fmt.Errorf("message %s: its record expired or was never written: %w", id, asynq.SkipRetry)
	} else if err != nil {
		return fmt.Errorf("load record: %w", err)
	}
	m := rec.Message
	log := h.Log.With("message_id", m.ID, "to", queue.MaskNumber(m.To), "kind", m.Kind, "attempt", attempt)
	switch {
	case rec.Status == queue.StatusQueued && rec.Attempt == attempt-1:
	case !rec.Status.Terminal() && rec.Attempt == attempt-1:
		// A redial task that runs while the previous attempt is in its call.
		return errNotDue(attempt)
	default:
		// A redelivery (asynq is at-least-once): the record says what
		// became of this attempt. A call still up belongs to its worker,
		// or, if that worker died, to the reaper of a live one.
		log.Info("redelivered task: not dialling again", "status", rec.Status, "record_attempt", rec.Attempt)
		return nil
	}

	// Render before claiming, so a worker that dies while synthesizing
	// leaves the message queued.
	msg, err := h.render(ctx, m)
	if err != nil {
		log.Error("message cannot be played", "err", err)
		if aerr := h.Queue.Abandon(ctx, m.Key(), h.Owner, queue.StatusFailed, err.Error()); aerr != nil {
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

	outcome, cur, err := h.Queue.Claim(ctx, m.Key(), attempt, h.Owner, slot.Member(), h.Durability)
	if err != nil {
		slot.Release()
		// Whether the claim took effect is unknown (a lost reply): take it
		// back, through the journal if need be, then let asynq retry.
		h.Journal.record(queue.UnclaimOp(m.Key(), attempt, h.Owner, slot.Member(),
			"the worker could not confirm its claim; rescheduled, not dialled"))
		return fmt.Errorf("claim: %w", err)
	}
	if outcome == queue.AttemptNotDue {
		slot.Release()
		return errNotDue(attempt)
	}
	if outcome != queue.Claimed {
		// Another delivery won the claim: the slot this delivery took is
		// its own member, so releasing it leaves the winner's alone.
		slot.Release()
		log.Warn("message was claimed by another delivery; not dialling", "outcome", outcome, "status", cur.Status)
		return nil
	}
	return h.dial(ctx, log, m, attempt, msg, trunks, slot)
}

// errNotDue is returned for asynq to retry a redial task that ran while
// the previous attempt was still in its call.
func errNotDue(attempt int) error {
	return fmt.Errorf("attempt %d runs before attempt %d was recorded; retrying later", attempt, attempt-1)
}

// render returns the message's audio for each codec of the trunks, with the
// template's key actions.
func (h *Handler) render(ctx context.Context, m queue.Message) (*message, error) {
	p := tts.Prompt{Repeat: m.PlayTimes, Pause: h.Speech.RepeatPause}
	msg := &message{}
	language := m.Language
	switch m.Kind {
	case queue.KindCode:
		// Assembled from cached prefix and digit clips: no code is
		// synthesized as a whole or written to disk (audio.go).
		c, err := h.codePrompt(m)
		if err != nil {
			return nil, err
		}
		if msg.audio, err = h.renderEach(ctx, func(ctx context.Context, codec tts.Codec) (*tts.Audio, error) {
			return h.Renderer.RenderCode(ctx, c, codec)
		}); err != nil {
			return nil, err
		}
		return msg, nil
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
	return h.renderEach(ctx, func(ctx context.Context, c tts.Codec) (*tts.Audio, error) {
		return h.Renderer.Render(ctx, p, c)
	})
}

// renderEach calls render for every codec any trunk offers.
func (h *Handler) renderEach(ctx context.Context, render func(context.Context, tts.Codec) (*tts.Audio, error)) (map[tts.Codec]*tts.Audio, error) {
	out := map[tts.Codec]*tts.Audio{}
	for _, c := range h.codecs() {
		a, err := render(ctx, c)
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

// finish writes the outcome through the journal: into Redis now, or as
// soon as it answers. It never gives up on a call that was made.
func (h *Handler) finish(m queue.Message, attempt int, trunk string, res telephony.Result, tries []queue.Attempt, next *queue.NextAttempt) error {
	rec := &queue.Record{Message: m, Status: res.Status, Attempt: attempt, Reason: res.Reason,
		Trunk: trunk, CallID: res.CallID, Codec: string(res.Codec),
		SIPCode: res.SIPCode, SIPReason: res.SIPReason, HungUpBy: res.HungUpBy,
		PlayedToEnd: res.PlayedToEnd, AudioMS: res.AudioMS,
		InviteAt: res.InviteAt, RingingAt: res.RingingAt, AnsweredAt: res.AnsweredAt, EndedAt: res.EndedAt,
		BillableMS: res.BillableMS, Keys: res.Keys, Confirmed: res.Confirmed, OptedOut: res.OptedOut}
	op, err := queue.FinishOp(h.Owner, rec, tries, next)
	if err != nil {
		return fmt.Errorf("record the outcome of call %s: %w: %w", res.CallID, err, asynq.SkipRetry)
	}
	h.Journal.record(op)
	return nil
}

// progress writes a call's milestones to the record as they happen, and
// with them the dialog another worker needs to end the call should this
// one die.
type progress struct {
	h       *Handler
	id      string
	attempt int
	trunk   string
	log     *slog.Logger
}

func (p *progress) write(to queue.Status, fields map[string]string) {
	p.h.Journal.record(queue.ProgressOp(p.id, p.attempt, p.h.Owner, to, fields))
}

func dialogField(d telephony.Dialog) string {
	b, _ := json.Marshal(d)
	return string(b)
}

func (p *progress) InviteSent(at time.Time, d telephony.Dialog) {
	p.write(queue.StatusDialing, map[string]string{"invite_at": at.UTC().Format(time.RFC3339Nano), "trunk": p.trunk,
		"call_id": d.CallID, "dialog": dialogField(d)})
}
func (p *progress) Ringing(at time.Time) {
	p.write(queue.StatusRinging, map[string]string{"ringing_at": at.UTC().Format(time.RFC3339Nano)})
}
func (p *progress) Answered(at time.Time, d telephony.Dialog) {
	p.write(queue.StatusAnswered, map[string]string{"answered_at": at.UTC().Format(time.RFC3339Nano), "dialog": dialogField(d)})
}
