package httptts

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vms-project/vms/tts"
)

// speechServer is a small TTS service for the tests: it checks the bearer token,
// reads the JSON body, runs the real espeak-ng and answers WAV, or MP3 through lame
// when the body asks for "mp3".
type speechServer struct {
	t        *testing.T
	failures atomic.Int32 // answer 503 this many times first
	requests atomic.Int32
	last     atomic.Pointer[map[string]any]
}

func (s *speechServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Header.Get("Authorization") != "Bearer test-token" {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	if s.failures.Add(-1) >= 0 {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	var req struct {
		Input struct {
			Text string `json:"text"`
		} `json:"input"`
		Voice  string  `json:"voice_name"`
		Speed  float64 `json:"speed"`
		Format string  `json:"format"`
	}
	raw := map[string]any{}
	body := http.MaxBytesReader(w, r.Body, 1<<20)
	dec := json.NewDecoder(body)
	if err := dec.Decode(&raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.last.Store(&raw)
	b, _ := json.Marshal(raw)
	json.Unmarshal(b, &req)
	dir := s.t.TempDir()
	wav := filepath.Join(dir, "out.wav")
	out, err := exec.Command("espeak-ng", "-v", req.Voice, "-s", strconv.Itoa(int(175*req.Speed)), "-w", wav, req.Input.Text).CombinedOutput()
	if err != nil || strings.Contains(string(out), "does not exist") {
		http.Error(w, "unknown voice "+req.Voice, http.StatusBadRequest)
		return
	}
	file, ctype := wav, "audio/wav"
	if req.Format == "mp3" {
		file, ctype = filepath.Join(dir, "out.mp3"), "audio/mpeg"
		if out, err := exec.Command("lame", "--quiet", wav, file).CombinedOutput(); err != nil {
			http.Error(w, string(out), http.StatusInternalServerError)
			return
		}
	}
	data, _ := os.ReadFile(file)
	w.Header().Set("Content-Type", ctype)
	w.Write(data)
}

const testBody = `{"input": {"text": {{text}}}, "voice_name": {{voice}}, "speed": {{rate}}, "format": {{format}}}`

func requireTools(t *testing.T) {
	for _, p := range []string{"espeak-ng", "lame"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not installed (apt-get install -y espeak-ng lame): %v", p, err)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestHTTPEngineAgainstEspeakServer(t *testing.T) {
	requireTools(t)
	for _, format := range []string{"wav", "mp3"} {
		t.Run(format, func(t *testing.T) {
			srv := &speechServer{t: t}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			e, err := New(Config{Name: "cloud", URL: ts.URL + "/v1/speak", Body: testBody, Format: format,
				Headers: map[string]string{"Authorization": "Bearer test-token"}})
			if err != nil {
				t.Fatal(err)
			}
			text := `Your parcel "SF1024" arrives today.`
			pcm, rate, err := e.Synthesize(ctx(t), text, "en-us")
			if err != nil {
				t.Fatal(err)
			}
			if rate != 22050 {
				t.Errorf("rate %d, want espeak-ng's 22050", rate)
			}
			normal := time.Duration(len(pcm)) * time.Second / time.Duration(rate)
			if normal < time.Second || normal > 5*time.Second {
				t.Errorf("implausible duration %s", normal)
			}
			got := *srv.last.Load()
			if got["input"].(map[string]any)["text"] != text || got["voice_name"] != "en-us" || got["speed"] != 1.0 || got["format"] != format {
				t.Errorf("server received %v", got)
			}
			// Rate reaches the service: twice as fast is clearly shorter.
			fast, _, err := e.SynthesizeRate(ctx(t), text, "en-us", 2)
			if err != nil {
				t.Fatal(err)
			}
			if r := float64(len(fast)) / float64(len(pcm)); r > 0.75 {
				t.Errorf("rate 2 gave %.2f of the normal length", r)
			}
		})
	}
}

func TestHTTPEngineRetriesAndRefusals(t *testing.T) {
	requireTools(t)
	srv := &speechServer{t: t}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	auth := map[string]string{"Authorization": "Bearer test-token"}
	e, _ := New(Config{Name: "cloud", URL: ts.URL, Body: testBody, Headers: auth, Backoff: 20 * time.Millisecond})
	srv.failures.Store(2)
	if _, _, err := e.Synthesize(ctx(t), "hello", "en-us"); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	if n := srv.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	srv.failures.Store(5)
	srv.requests.Store(0)
	_, _, err := e.Synthesize(ctx(t), "hello", "en-us")
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "3 attempts") || srv.requests.Load() != 3 {
		t.Errorf("out of retries: %v (%d requests)", err, srv.requests.Load())
	}
	srv.failures.Store(0)
	srv.requests.Store(0)
	// Wrong credentials and unknown voices are not retried.
	bad, _ := New(Config{Name: "cloud", URL: ts.URL, Body: testBody, Headers: map[string]string{"Authorization": "Bearer nope"}})
	if _, _, err := bad.Synthesize(ctx(t), "hello", "en-us"); err == nil || !strings.Contains(err.Error(), "credentials") || srv.requests.Load() != 1 {
		t.Errorf("bad token: %v (%d requests)", err, srv.requests.Load())
	}
	if _, _, err := e.Synthesize(ctx(t), "hello", "xx-nonexistent"); !errors.Is(err, tts.ErrUnknownVoice) {
		t.Errorf("unknown voice: %v", err)
	}
	// A service that answers HTML, or is too slow.
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>maintenance</html>"))
	}))
	defer html.Close()
	h, _ := New(Config{Name: "h", URL: html.URL})
	if _, _, err := h.Synthesize(ctx(t), "hello", "en"); err == nil || !strings.Contains(err.Error(), "not audio/wav") {
		t.Errorf("html answer: %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	s, _ := New(Config{Name: "s", URL: slow.URL, Timeout: 200 * time.Millisecond, Retries: -1})
	start := time.Now()
	if _, _, err := s.Synthesize(ctx(t), "hello", "en"); err == nil || !strings.Contains(err.Error(), "no complete answer within 200ms") {
		t.Errorf("slow service: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("timeout not honoured: %s", time.Since(start))
	}
	// Bad configurations.
	for _, c := range []Config{{Name: "x", URL: "ftp://a"}, {Name: "x", URL: ts.URL, Body: `{"text": "{{text}}"}`}, {Name: "x", URL: ts.URL, Format: "ogg"}} {
		if _, err := New(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

// The HTTP engine behind a Renderer, chosen per segment: its speech is loudness
// normalized like espeak-ng's, and cached.
func TestHTTPEngineInRenderer(t *testing.T) {
	requireTools(t)
	srv := &speechServer{t: t}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	e, _ := New(Config{Name: "cloud", URL: ts.URL, Body: testBody, Headers: map[string]string{"Authorization": "Bearer test-token"}})
	r, err := tts.NewRenderer(tts.Espeak{}, t.TempDir(), tts.WithEngine("cloud", e))
	if err != nil {
		t.Fatal(err)
	}
	p := tts.Prompt{Segments: []tts.Segment{
		{Text: "This part comes from the HTTP engine.", Voice: "en-us", Engine: "cloud"},
		{Text: "And this one from local espeak.", Voice: "en-us"},
	}, Gap: 200 * time.Millisecond}
	for range 2 {
		a, err := r.Render(ctx(t), p, tts.PCMU)
		if err != nil {
			t.Fatal(err)
		}
		pcm := tts.Decode(a.Payload, tts.PCMU)
		if l, _ := tts.Loudness(pcm); math.Abs(l-tts.DefaultLoudness) > 1 {
			t.Errorf("rendered at %.1f dBFS", l)
		}
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests to the service for two renders, want 1", n)
	}
	if _, err := r.Render(ctx(t), tts.Prompt{Segments: []tts.Segment{{Text: "x", Engine: "nope"}}}, tts.PCMU); !errors.Is(err, tts.ErrUnknownEngine) {
		t.Errorf("unknown engine: %v", err)
	}
}
