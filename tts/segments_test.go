package tts

import (
	"errors"
	"math"
	"testing"
	"time"
)

// A prompt of segments: speech, a recorded clip, speech again, with gaps; the clip is
// played as given, every part at the loudness target.
func TestRenderSegmentsWithClip(t *testing.T) {
	requireEspeak(t)
	r := newTestRenderer(t, Espeak{}, t.TempDir())
	clip := &Clip{Key: ContentKey("test-clip"), PCM: NormalizeLoudness(tone(600, SampleRate, 1, 8000), DefaultLoudness, 0)}
	p := Prompt{Segments: []Segment{
		{Text: "Hello.", Voice: "en-us"},
		{Clip: clip},
		{Text: "Goodbye.", Voice: "en-us"},
	}, Gap: 250 * time.Millisecond}
	a, err := r.Render(testContext(t), p, PCMA)
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := r.Render(testContext(t), Prompt{Text: "Hello.", Voice: "en-us"}, PCMA)
	bye, _ := r.Render(testContext(t), Prompt{Text: "Goodbye.", Voice: "en-us"}, PCMA)
	want := hello.Duration() + bye.Duration() + time.Second + 500*time.Millisecond
	if d := a.Duration() - want; d < -60*time.Millisecond || d > 60*time.Millisecond {
		t.Errorf("duration %s, want about %s", a.Duration(), want)
	}
	pcm := Decode(a.Payload, PCMA)
	// The clip sits after the first speech and its gap.
	start := int((hello.Duration() + 250*time.Millisecond + 100*time.Millisecond) * SampleRate / time.Second)
	if l, _ := Loudness(pcm[start : start+SampleRate/2]); math.Abs(l-DefaultLoudness) > 0.5 {
		t.Errorf("clip played at %.1f dBFS", l)
	}
	if l, _ := Loudness(pcm); math.Abs(l-DefaultLoudness) > 1 {
		t.Errorf("prompt at %.1f dBFS, want %g", l, DefaultLoudness)
	}
	// Volume is relative to the target.
	quiet, err := r.Render(testContext(t), Prompt{Text: "Hello.", Voice: "en-us", Segments: []Segment{{Text: "Hello.", Voice: "en-us", Volume: -6}}}, PCMA)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := Loudness(Decode(quiet.Payload, PCMA)); math.Abs(l-(DefaultLoudness-6)) > 0.7 {
		t.Errorf("volume -6: %.1f dBFS", l)
	}
}

func TestRenderRate(t *testing.T) {
	requireEspeak(t)
	eng := &countingEspeak{}
	r := newTestRenderer(t, eng, t.TempDir())
	text := "The quick brown fox jumps over the lazy dog."
	normal, err := r.Render(testContext(t), Prompt{Text: text, Voice: "en-us"}, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := r.Render(testContext(t), Prompt{Segments: []Segment{{Text: text, Voice: "en-us", Rate: 1.6}}}, PCMU)
	if err != nil {
		t.Fatal(err)
	}
	if ratio := fast.Duration().Seconds() / normal.Duration().Seconds(); ratio > 0.8 {
		t.Errorf("rate 1.6 took %.2f of the normal time", ratio)
	}
	for _, bad := range []Segment{{Text: text, Rate: 3}, {Text: text, Volume: 40}, {Clip: &Clip{}}, {Text: " "}} {
		if _, err := r.Render(testContext(t), Prompt{Segments: []Segment{bad, {Text: "x"}}}, PCMU); err == nil {
			t.Errorf("segment %+v accepted", bad)
		}
	}
	if _, err := r.Render(testContext(t), Prompt{Segments: []Segment{{Text: "x", Engine: "nope"}}}, PCMU); !errors.Is(err, ErrUnknownEngine) {
		t.Errorf("unknown engine: %v", err)
	}
}
