package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vms-project/vms/internal/redistest"
)

// `vms template audio upload`, approval (which pins the recording) and `vms tts warm`,
// as an operator runs them.
func TestTemplateAudioCommands(t *testing.T) {
	redis := redistest.Start(t)
	t.Setenv("REDIS_URL", redis.URL)
	dir := t.TempDir()
	cache, store := filepath.Join(dir, "cache"), filepath.Join(dir, "store")
	cfg := filepath.Join(dir, "vms.yaml")
	os.WriteFile(cfg, []byte(`policy: {hmac_secret: test-secret-0123456789}
trunks:
  - {name: carrier-sim, uri: "sip:127.0.0.1:5080", transport: udp, codecs: [PCMU]}
tts:
  cache_dir: `+cache+`
audio:
  store: {dir: `+store+`}
templates:
  - id: hello
    text: "Welcome to Example Shop."
    language: en
    status: approved
`), 0o600)
	wav := filepath.Join(dir, "hello.wav")
	if out, err := exec.Command("espeak-ng", "-v", "en-us", "-w", wav, "Hello, this is Example Shop.").CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v %s", err, out)
	}
	junk := filepath.Join(dir, "notes.txt")
	os.WriteFile(junk, []byte("not audio at all"), 0o644)

	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"template", "audio", "upload", "greet", junk, "-c", cfg}, 2, "unsupported audio format"},
		{[]string{"template", "audio", "upload", "greet", wav, "-c", cfg, "--text", "Hello, this is Example Shop.", "--lang", "en"}, 0, "uploaded   store:"},
		{[]string{"template", "show", "greet", "-c", cfg}, 0, "not pinned: approve to pin"},
		{[]string{"template", "approve", "greet", "-c", cfg, "--by", "rev"}, 0, "pinned sha256"},
		{[]string{"tts", "warm", "-c", cfg}, 0, "2 template(s) warmed, 0 failed"},
		{[]string{"tts", "warm", "-c", cfg}, 0, "2 code language(s) warmed, 0 failed"},
		{[]string{"tts", "warm", "-c", cfg, "--template", "nope"}, 1, "nope                 not found"},
		{[]string{"tts"}, 2, "usage: vms tts warm"},
	}
	for _, s := range steps {
		out, errOut, code := vms(t, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Fatalf("vms %v: exit %d (want %d), out %q err %q; want %q", s.args, code, s.code, out, errOut, s.want)
		}
	}
	// The upload is in the store, and the warm run left both templates' audio in the
	// cache: the recording of greet and the text of hello; and the code prefix and ten
	// digits of each code language (en, zh).
	if files, _ := filepath.Glob(filepath.Join(store, "*", "*")); len(files) != 1 {
		t.Errorf("audio store holds %v", files)
	}
	if files, _ := filepath.Glob(filepath.Join(cache, "pcm", "*", "*.wav")); len(files) != 2+2*11 {
		t.Errorf("cache holds %d files after warming, want %d", len(files), 2+2*11)
	}
}
