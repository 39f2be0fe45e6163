package tts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const installHint = "espeak-ng not found: install it with `apt-get install -y espeak-ng`"

func TestEspeakSynthesize(t *testing.T) {
	requireEspeak(t)
	for _, tc := range []struct{ voice, text string }{
		{"en-us", "Hello, this is a test."},
		{"cmn", "你好，这是一个测试。"},
		{"", "Default voice."},
	} {
		pcm, rate, err := Espeak{}.Synthesize(testContext(t), tc.text, tc.voice)
		if err != nil {
			t.Fatalf("%s: %v", tc.voice, err)
		}
		d := seconds(len(pcm), rate)
		t.Logf("%q in %q: %d Hz, %s, RMS %.0f", tc.text, tc.voice, rate, d, pcmRMS(pcm))
		if rate != 22050 {
			t.Errorf("%s: rate %d, want 22050", tc.voice, rate)
		}
		if d < 500*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s: implausible duration %s", tc.voice, d)
		}
		if pcmRMS(pcm) < 300 {
			t.Errorf("%s: nearly silent (RMS %.0f)", tc.voice, pcmRMS(pcm))
		}
	}
}

func TestEspeakTextIsNeverAnOption(t *testing.T) {
	requireEspeak(t)
	// Were the text on the command line, these would be options (help text, another
	// voice, a file); on stdin they are just words.
	for _, text := range []string{"--help", "-v xx -w /tmp/vms-owned.wav", "$(reboot); `id`"} {
		pcm, _, err := Espeak{}.Synthesize(testContext(t), text, "en-us")
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if len(pcm) == 0 {
			t.Errorf("%q: no audio", text)
		}
	}
	if _, err := os.Stat("/tmp/vms-owned.wav"); err == nil {
		t.Error("text was interpreted as the -w option")
	}
}

func TestEspeakMissingBinary(t *testing.T) {
	check := func(t *testing.T, e Espeak) {
		_, _, err := e.Synthesize(context.Background(), "hello", "en-us")
		if err == nil {
			t.Fatal("no error for a missing binary")
		}
		if !errors.Is(err, ErrEspeakNotFound) || !strings.HasPrefix(err.Error(), installHint) {
			t.Errorf("error %q: want errors.Is ErrEspeakNotFound and prefix %q", err, installHint)
		}
	}
	t.Run("explicit path", func(t *testing.T) { check(t, Espeak{Binary: "/nonexistent/espeak-ng"}) })
	t.Run("not in PATH", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		check(t, Espeak{})
	})
}

func TestEspeakUnknownVoice(t *testing.T) {
	requireEspeak(t)
	for _, voice := range []string{"xx-nope", "-q", "en us"} {
		_, _, err := Espeak{}.Synthesize(testContext(t), "hello", voice)
		if !errors.Is(err, ErrUnknownVoice) {
			t.Errorf("voice %q: error %v, want ErrUnknownVoice", voice, err)
			continue
		}
		t.Logf("voice %q: %v", voice, err)
	}
	// A mapped voice that does not exist falls back to the requested one.
	e := Espeak{VoiceMap: map[string]string{"en-us": "no-such-voice"}}
	if _, _, err := e.Synthesize(testContext(t), "hello", "en-us"); err != nil {
		t.Errorf("fallback to the requested voice: %v", err)
	}
}

func TestEspeakNeverHangs(t *testing.T) {
	// A binary that never answers (and leaves a child holding stdout open) must be
	// killed by the timeout, and the call must return soon after.
	bin := filepath.Join(t.TempDir(), "espeak-ng")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := Espeak{Binary: bin, Timeout: 200 * time.Millisecond}.Synthesize(context.Background(), "hello", "en-us")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("returned after %s", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := (Espeak{Binary: bin}).Synthesize(ctx, "hello", "en-us"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: error %v, want context.Canceled", err)
	}
}

func TestEspeakConfigChangesWithSettings(t *testing.T) {
	if (Espeak{}).Config() == (Espeak{Speed: 140}).Config() {
		t.Error("Speed does not change Config")
	}
	if (Espeak{}).Config() == (Espeak{VoiceMap: map[string]string{}}).Config() {
		t.Error("VoiceMap does not change Config")
	}
}
