package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vms-project/vms/audio"
	"github.com/vms-project/vms/config"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/templates"
	"github.com/vms-project/vms/tts"
)

// speak records text with espeak-ng, as an operator's recorded prompt, in format
// wav or mp3 (through lame).
func speak(t *testing.T, text, format string) []byte {
	t.Helper()
	dir := t.TempDir()
	wav := filepath.Join(dir, "p.wav")
	if out, err := exec.Command("espeak-ng", "-v", "en-us", "-w", wav, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v %s", err, out)
	}
	file := wav
	if format == "mp3" {
		file = filepath.Join(dir, "p.mp3")
		if out, err := exec.Command("lame", "--quiet", wav, file).CombinedOutput(); err != nil {
			t.Fatalf("lame (apt-get install -y lame): %v %s", err, out)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every template source end to end, through real calls into the simulator: a
// recording by URL, a mixed template of a URL, TTS with a digits parameter, a local
// file and an uploaded recording, and TTS with money and date parameters. Then the
// pinning rule: the recording behind the URL is swapped, and the template stops being
// sendable.
func TestTemplateAudioSourcesEndToEnd(t *testing.T) {
	greeting := speak(t, "Hello from Example Shop.", "wav")
	goodbye := speak(t, "Goodbye.", "wav")
	notice := speak(t, "This call is recorded.", "mp3")
	var served atomic.Pointer[[]byte]
	served.Store(&greeting)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := *served.Load()
		tag := `"` + audio.SHA256(b)[:16] + `"`
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(b)
	}))
	defer ts.Close()
	url := ts.URL + "/prompts/greeting.wav?token=secret"
	local := filepath.Join(t.TempDir(), "goodbye.wav")
	os.WriteFile(local, goodbye, 0o644)
	stored := audio.StorePrefix + audio.SHA256(notice)

	r := newRig(t, func(c *config.Config) {
		c.Audio.Fetch.Revalidate = 0 // ask the server on every call (conditionally)
		// The test server is on 127.0.0.1.
		c.Audio.Fetch.AllowPrivateHosts = true
		c.Templates = append(c.Templates,
			config.Template{ID: "greet", Source: "audio", Audio: url, Text: "Hello from Example Shop.", Language: "en", Status: "approved"},
			config.Template{ID: "login", Source: "mixed", Language: "en", Status: "pending",
				Segments: []templates.Segment{{Audio: url, Text: "Hello from Example Shop."}, {Text: "Your code is {1}."},
					{Audio: stored, Text: "This call is recorded."}, {Audio: local, Text: "Goodbye."}},
				Params: []templates.Param{{As: "digits"}}},
			config.Template{ID: "bill", Text: "Your bill of {1} is due on {2}.", Language: "en", Status: "approved",
				Params: []templates.Param{{As: "money"}, {As: "date"}}},
		)
	})
	rdb := redisOf(t, r)
	if ref, err := (audio.RedisStore{Client: rdb}).Put(context.Background(), notice); err != nil || ref != stored {
		t.Fatalf("upload: %s %v", ref, err)
	}
	r.start(t)
	ctx := context.Background()
	st := r.worker.Handler.Templates.(*templates.Store)
	send := func(id string, params ...string) *queue.Record {
		t.Helper()
		rec, err := r.q.SendTTS(ctx, queue.TTSRequest{To: "+8613800138000", TemplateID: id, Params: params, PlayTimes: 1})
		if err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
		return r.wait(t, rec.ID, 60*time.Second)
	}

	// Approved in the config file, but its recording was never checked: not sent.
	got := send("greet")
	if got.Status != queue.StatusFailed || !strings.Contains(got.Reason, "never pinned") || strings.Contains(got.Reason, "secret") {
		t.Fatalf("unpinned recording: %s %q", got.Status, got.Reason)
	}
	if tpl, _ := st.Template(ctx, "greet"); tpl.Status != templates.StatusPending {
		t.Fatalf("template greet is %s after an unpinned send, want pending", tpl.Status)
	}
	for _, id := range []string{"greet", "login"} {
		tpl, err := st.Approve(ctx, id, templates.Review{By: "reviewer"})
		if err != nil || !tpl.PinsMatch() {
			t.Fatalf("approve %s: %v (pins %v)", id, err, tpl.Pins)
		}
	}

	h := r.worker.Handler
	clip := func(data []byte) time.Duration {
		pcm, _, err := audio.Prepare(data, audio.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(len(pcm)) * time.Second / tts.SampleRate
	}
	for _, tc := range []struct {
		id       string
		params   []string
		min, max time.Duration
		expect   *tts.Prompt // an independent expectation of the audio, when there is one
	}{
		{"greet", nil, clip(greeting) - 20*time.Millisecond, clip(greeting) + 20*time.Millisecond, nil},
		{"login", []string{"4821"}, clip(greeting) + clip(notice) + clip(goodbye) + 2*time.Second, 15 * time.Second, nil},
		{"bill", []string{"$1,280.50", "2026-12-01"}, 3 * time.Second, 15 * time.Second, &tts.Prompt{Voice: "en-us", Repeat: 1,
			Text: "Your bill of one thousand two hundred eighty dollars and fifty cents is due on December first, twenty twenty-six."}},
	} {
		n := len(r.sim.Calls())
		got := send(tc.id, tc.params...)
		if got.Status != queue.StatusCompleted || !got.PlayedToEnd {
			t.Fatalf("%s: %s %q", tc.id, got.Status, got.Reason)
		}
		calls, err := r.sim.WaitEnded(ctx, n+1)
		if err != nil {
			t.Fatal(err)
		}
		sc := calls[len(calls)-1]
		played := time.Duration(len(sc.Payload)) * time.Second / tts.SampleRate
		if played < tc.min || played > tc.max {
			t.Errorf("%s: callee heard %s, want %s to %s", tc.id, played, tc.min, tc.max)
		}
		pcm := tts.Decode(sc.Payload, tts.PCMU)
		if l, _ := tts.Loudness(pcm); l < tts.DefaultLoudness-1.5 || l > tts.DefaultLoudness+1.5 {
			t.Errorf("%s: played at %.1f dBFS, want about %g", tc.id, l, tts.DefaultLoudness)
		}
		if tc.expect != nil {
			want, err := h.Renderer.Render(ctx, *tc.expect, tts.PCMU)
			if err != nil {
				t.Fatal(err)
			}
			if string(want.Payload) != string(sc.Payload) {
				t.Errorf("%s: the callee did not hear the normalized text (%d vs %d bytes)", tc.id, len(sc.Payload), len(want.Payload))
			}
		}
		t.Logf("%s: callee heard %s at %.1f dBFS", tc.id, played, func() float64 { l, _ := tts.Loudness(pcm); return l }())
	}

	// The recording behind the URL is swapped: the template is not sent and goes back
	// to pending with the reason; the mixed template that uses it too.
	other := speak(t, "Buy our premium plan now!", "wav")
	served.Store(&other)
	got = send("greet")
	if got.Status != queue.StatusFailed || !strings.Contains(got.Reason, "changed since approval") {
		t.Fatalf("swapped recording: %s %q", got.Status, got.Reason)
	}
	tpl, _ := st.Template(ctx, "greet")
	if tpl.Status != templates.StatusPending || !strings.Contains(tpl.Reason, "changed since approval") {
		t.Errorf("template greet %s %q, want pending with the reason", tpl.Status, tpl.Reason)
	}
	if _, err := r.q.SendTTS(ctx, queue.TTSRequest{To: "+8613800138000", TemplateID: "greet", PlayTimes: 1}); err == nil {
		t.Error("a template with a swapped recording was accepted for sending")
	}
	if got := send("login", "1234"); got.Status != queue.StatusFailed || !strings.Contains(got.Reason, "changed since approval") {
		t.Errorf("mixed template with the swapped recording: %s %q", got.Status, got.Reason)
	}
}

// `vms tts warm`'s work: the fixed parts of an approved template are rendered ahead,
// so the first call synthesizes only what depends on the message.
func TestWarmTemplate(t *testing.T) {
	r := newRig(t, func(c *config.Config) {
		c.TTS.CacheDir = t.TempDir()
		c.Templates = append(c.Templates, config.Template{ID: "warm", Source: "mixed", Language: "en", Status: "approved",
			Segments: []templates.Segment{{Text: "Welcome to the warm test."}, {Text: "Your code is {1}."}, {Text: "Thank you for waiting."}},
			Params:   []templates.Param{{As: "digits"}}})
	})
	ctx := context.Background()
	tpl, err := r.worker.Handler.Templates.Template(ctx, "warm")
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.worker.Handler.WarmTemplate(ctx, tpl)
	if err != nil || n != 2 {
		t.Fatalf("warmed %d parts: %v, want the 2 fixed ones", n, err)
	}
	files, _ := filepath.Glob(filepath.Join(r.cfg.TTS.CacheDir, "pcm", "*", "*.wav"))
	if len(files) != 2 {
		t.Errorf("%d cached files after warming, want 2", len(files))
	}
}

// redisOf returns a client of the rig's Redis.
func redisOf(t *testing.T, r *rig) *redis.Client {
	opt, err := redis.ParseURL(r.cfg.Redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}
