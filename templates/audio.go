package templates

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vms-project/vms/tts/normalize"
)

// Source says where a template's sound comes from.
type Source string

// Template sources.
const (
	// SourceTTS speaks Text (with its placeholders filled) through a TTS engine.
	SourceTTS Source = "tts"
	// SourceAudio plays the recording named by Audio. Text is its transcript, for the
	// reviewer; a recording has no placeholders.
	SourceAudio Source = "audio"
	// SourceMixed plays Segments in order: recordings and TTS texts with placeholders.
	SourceMixed Source = "mixed"
)

// ParseSource checks a source word; "" means tts.
func ParseSource(s string) (Source, error) {
	switch src := Source(s); src {
	case "":
		return SourceTTS, nil
	case SourceTTS, SourceAudio, SourceMixed:
		return src, nil
	}
	return "", fmt.Errorf("source %q is not one of tts, audio, mixed", s)
}

// SourceOf returns t's source, tts when unset.
func (t Template) SourceOf() Source {
	if t.Source == "" {
		return SourceTTS
	}
	return t.Source
}

// Segment is one part of a mixed template: a recording (Audio, with Text as its
// transcript for the reviewer) or, when Audio is empty, TTS text with placeholders.
type Segment struct {
	// Audio references a recording: an http(s) URL, a file path on every worker,
	// or store:<sha256> from `vms template audio upload`.
	Audio string `json:"audio,omitempty" yaml:"audio"`
	// Text is spoken (no Audio) or is the recording's transcript (with Audio).
	Text string `json:"text,omitempty" yaml:"text"`
}

// Limits of the audio fields.
const (
	MaxSegments = 32
	// Rate and volume bounds match the renderer's (tts.MinRate...).
	MinRate, MaxRate     = 0.5, 2.0
	MinVolume, MaxVolume = -20.0, 10.0
)

// recordingPlaceholder stands for a recording without a transcript in a mixed
// template's derived text.
const recordingPlaceholder = "[recording]"

// Parts returns what t plays, in order: for tts one text segment (Text), for audio one
// recording, for mixed its segments.
func (t Template) Parts() []Segment {
	switch t.SourceOf() {
	case SourceAudio:
		return []Segment{{Audio: t.Audio, Text: t.Text}}
	case SourceMixed:
		return t.Segments
	}
	return []Segment{{Text: t.Text}}
}

// Recordings returns the recording references t plays, each once, in order.
func (t Template) Recordings() []string {
	var out []string
	for _, s := range t.Parts() {
		if s.Audio != "" && !slices.Contains(out, s.Audio) {
			out = append(out, s.Audio)
		}
	}
	return out
}

// normalizeAudio checks the audio fields of t and derives what follows from them: a
// mixed template's Text is its segments' texts joined (the reviewer reads it, and
// placeholders are numbered over it); a recording without a transcript reads
// "[recording]".
func normalizeAudio(t *Template) error {
	src, err := ParseSource(string(t.Source))
	if err != nil {
		return fmt.Errorf("template %s: %w", t.ID, err)
	}
	if src == SourceTTS {
		t.Source = ""
	} else {
		t.Source = src
	}
	if t.Rate != 0 && (t.Rate < MinRate || t.Rate > MaxRate) {
		return fmt.Errorf("template %s: rate %g: use %g to %g (1 is normal speed)", t.ID, t.Rate, MinRate, MaxRate)
	}
	if t.Volume < MinVolume || t.Volume > MaxVolume {
		return fmt.Errorf("template %s: volume %g dB: use %g to %g", t.ID, t.Volume, MinVolume, MaxVolume)
	}
	switch src {
	case SourceTTS:
		if t.Audio != "" || len(t.Segments) > 0 {
			return fmt.Errorf("template %s: audio and segments need source audio or mixed", t.ID)
		}
	case SourceAudio:
		if strings.TrimSpace(t.Audio) == "" {
			return fmt.Errorf("template %s: source audio needs audio: an http(s) URL, a file path or store:<sha256> from `vms template audio upload`", t.ID)
		}
		if len(t.Segments) > 0 {
			return fmt.Errorf("template %s: segments need source mixed", t.ID)
		}
		if strings.TrimSpace(t.Text) == "" {
			t.Text = recordingPlaceholder
		}
		if placeholderRE.MatchString(t.Text) {
			return fmt.Errorf("template %s: a recording has no placeholders: use source mixed to speak parameters", t.ID)
		}
	case SourceMixed:
		if t.Audio != "" {
			return fmt.Errorf("template %s: source mixed takes its recordings in segments, not audio", t.ID)
		}
		if len(t.Segments) == 0 || len(t.Segments) > MaxSegments {
			return fmt.Errorf("template %s: source mixed needs 1 to %d segments, got %d", t.ID, MaxSegments, len(t.Segments))
		}
		var texts []string
		for i, s := range t.Segments {
			switch {
			case s.Audio != "" && placeholderRE.MatchString(s.Text):
				return fmt.Errorf("template %s: segment %d: a recording's transcript has no placeholders", t.ID, i+1)
			case s.Audio != "" && strings.TrimSpace(s.Text) == "":
				texts = append(texts, recordingPlaceholder)
			case s.Audio == "" && strings.TrimSpace(s.Text) == "":
				return fmt.Errorf("template %s: segment %d has neither audio nor text", t.ID, i+1)
			default:
				texts = append(texts, strings.TrimSpace(s.Text))
			}
		}
		t.Text = strings.Join(texts, " ")
	}
	return nil
}

// SpokenParts returns t's parts with every placeholder of the TTS texts replaced by
// its parameter, read as the placeholder's `as` says (digits, number, money, date,
// time or text) in t's language. params must fit t (see CheckParams).
func (t Template) SpokenParts(params []string) ([]Segment, error) {
	if err := t.CheckParams(params); err != nil {
		return nil, err
	}
	spoken := make([]string, len(params))
	for i, v := range params {
		as, err := normalize.ParseAs(t.Param(i + 1).As)
		if err != nil {
			return nil, fmt.Errorf("template %s: placeholder {%d}: %w", t.ID, i+1, err)
		}
		s, err := normalize.Value(v, as, t.Language)
		if err != nil {
			return nil, fmt.Errorf("parameter %d of template %s: %w", i+1, t.ID, err)
		}
		spoken[i] = s
	}
	parts := slices.Clone(t.Parts())
	for i, p := range parts {
		if p.Audio != "" {
			continue
		}
		parts[i].Text = placeholderRE.ReplaceAllStringFunc(p.Text, func(m string) string {
			n, _ := strconv.Atoi(m[1 : len(m)-1])
			return spoken[n-1]
		})
	}
	return parts, nil
}

// checkSpeakAs refuses a value that cannot be read as as says (a date that is no
// date), so a bad parameter is refused at send time rather than at the call.
func checkSpeakAs(as, v string) error {
	a, err := normalize.ParseAs(as)
	if err != nil || a == normalize.Text || a == normalize.Digits {
		return nil // digits are checked by DigitsOnly; unknown readings by Validate
	}
	if _, err := normalize.Value(v, a, "en"); err != nil {
		return fmt.Errorf("cannot be read as %s: %w", a, err)
	}
	return nil
}

// ClipChecker checks a recording for approval: it loads and decodes it and returns
// the SHA-256 of its bytes, or why it cannot be played (corrupt, empty, too long,
// unsupported, unreachable). Package audio's Clips provides it.
type ClipChecker interface {
	CheckClip(ctx context.Context, ref string) (sha256 string, err error)
}

// SetClipChecker sets what Approve uses to pin the recordings of audio and mixed
// templates. Call it once, before the Store is used. Without one, approving a
// template with recordings is refused.
func (s *Store) SetClipChecker(c ClipChecker) { s.clips = c }

// pinRecordings checks every recording of t and returns their SHA-256 by reference.
func (s *Store) pinRecordings(ctx context.Context, t Template) (map[string]string, error) {
	refs := t.Recordings()
	if len(refs) == 0 {
		return nil, nil
	}
	if s.clips == nil {
		return nil, fmt.Errorf("template %s: %w: its recordings cannot be checked here: configure audio (audio.store, audio.fetch) for this command", t.ID, ErrReview)
	}
	pins := map[string]string{}
	for _, ref := range refs {
		sum, err := s.clips.CheckClip(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w: recording refused: %v", t.ID, ErrReview, err)
		}
		pins[ref] = sum
	}
	return pins, nil
}

// PinsMatch reports whether pins cover exactly t's recordings.
func (t Template) PinsMatch() bool {
	refs := t.Recordings()
	if len(refs) != len(t.Pins) {
		return false
	}
	for _, r := range refs {
		if t.Pins[r] == "" {
			return false
		}
	}
	return true
}

// Unapprove puts an approved template back to pending with reason, when its content
// is still the one with the given digest (so a concurrent edit or re-approval is not
// overridden). The worker calls it when a recording no longer matches its pin: the
// template is not sent until it is reviewed again.
func (s *Store) Unapprove(ctx context.Context, id, digest, reason string) (Template, error) {
	return s.update(ctx, id, "vms", func(cur Template, _ string, exists bool) (change, error) {
		if !exists {
			return change{}, fmt.Errorf("template %q: %w", id, ErrNotFound)
		}
		if cur.Status != StatusApproved || cur.Digest() != digest {
			return change{}, nil
		}
		next := cur
		now := s.opts.Now().UTC()
		next.Status, next.Reason, next.UpdatedAt = StatusPending, reason, now
		return change{t: &next, event: "template.unapproved",
			details: map[string]string{"previous_status": string(cur.Status), "reason": reason}}, nil
	})
}

// reviewPins are the pins computed for an approval, for the content with digest.
type reviewPins struct {
	approve bool
	digest  string
	pins    map[string]string
}

// pinForReview checks and pins the recordings of template id before it is approved
// (outside the Redis transaction: fetching may take seconds). Other reviews pin
// nothing.
func (s *Store) pinForReview(ctx context.Context, id string, to Status) (reviewPins, error) {
	if to != StatusApproved {
		return reviewPins{}, nil
	}
	cur, _, err := s.read(ctx, s.rdb, id)
	if err != nil {
		return reviewPins{}, err
	}
	pins, err := s.pinRecordings(ctx, cur)
	if err != nil {
		return reviewPins{}, err
	}
	return reviewPins{approve: true, digest: cur.Digest(), pins: pins}, nil
}

// changes reports whether approving would change cur's pins.
func (p reviewPins) changes(cur Template) bool {
	return p.approve && !maps.Equal(p.pins, cur.Pins)
}

// apply sets the pins on next, refusing when the content changed since they were
// computed.
func (p reviewPins) apply(next *Template, cur Template) error {
	if !p.approve {
		return nil
	}
	if cur.Digest() != p.digest {
		return fmt.Errorf("template %s: %w: it changed while its recordings were checked: review it again", cur.ID, ErrReview)
	}
	next.Pins = p.pins
	return nil
}

// CheckAudioFields checks the audio fields of t (source, audio, segments, rate,
// volume) as storing it would, deriving a mixed template's text. Config validation
// uses it to report a bad file at start-up.
func CheckAudioFields(t *Template) error { return normalizeAudio(t) }

// HasPlaceholders reports whether text has a {n} placeholder.
func HasPlaceholders(text string) bool { return placeholderRE.MatchString(text) }
