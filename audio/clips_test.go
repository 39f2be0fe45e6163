package audio

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vms-project/vms/internal/redistest"
	"github.com/vms-project/vms/tts"
)

func newClips(t *testing.T, store Store) *Clips {
	t.Helper()
	r, err := tts.NewRenderer(tts.Espeak{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, _ := NewFetcher(FetchOptions{AllowPrivateHosts: true}) // test servers are on 127.0.0.1
	return &Clips{Loader: &Loader{Fetcher: f, Store: store}, Renderer: r}
}

// Every reference kind (URL, store in a directory and in Redis, file path and file://
// URL) gives the same prepared clip for the same recording.
func TestClipFromEverySource(t *testing.T) {
	wav := soxTone(t, "g.wav", 0.8, 0.3, "-r", "44100", "-c", "2", "-b", "16")
	srv := &clipServer{etag: true}
	srv.set(wav)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	path := filepath.Join(t.TempDir(), "greeting.wav")
	os.WriteFile(path, wav, 0o644)

	rdb := redistest.Start(t).Client(t)
	stores := map[string]Store{"dir": DirStore{Dir: t.TempDir()}, "redis": RedisStore{Client: rdb}}
	for name, store := range stores {
		c := newClips(t, store)
		ref, err := store.Put(testCtx(t), wav)
		if err != nil {
			t.Fatal(err)
		}
		if ref != StorePrefix+SHA256(wav) {
			t.Fatalf("%s: reference %s", name, ref)
		}
		var first Prepared
		for _, r := range []string{ts.URL + "/g.wav", ref, path, "file://" + path} {
			sum, info, err := c.Check(testCtx(t), r)
			if err != nil || sum != SHA256(wav) {
				t.Fatalf("%s: check %s: %s %v", name, r, sum, err)
			}
			p, err := c.Clip(testCtx(t), r, sum)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, r, err)
			}
			if first.Clip == nil {
				first = p
				t.Logf("%s: %s, %s -> %s", r, info.Format, info.Original, info.Trimmed)
			} else if p.Clip.Key != first.Clip.Key || len(p.Clip.PCM) != len(first.Clip.PCM) {
				t.Errorf("%s: %s prepared differently", name, r)
			}
		}
		if _, err := store.Get(testCtx(t), StorePrefix+strings.Repeat("ab", 32)); !errors.Is(err, ErrNotInStore) {
			t.Errorf("%s: missing ref: %v", name, err)
		}
		if _, err := store.Get(testCtx(t), "store:nothex"); err == nil {
			t.Errorf("%s: malformed ref accepted", name)
		}
	}
}

// The pinning rule: a clip whose bytes differ from the pinned SHA-256 is refused.
func TestClipPinMismatch(t *testing.T) {
	one := soxTone(t, "1.wav", 0.5, 0.3, "-r", "8000", "-c", "1", "-b", "16")
	two := soxTone(t, "2.wav", 0.5, 0.31, "-r", "8000", "-c", "1", "-b", "16")
	srv := &clipServer{etag: true}
	srv.set(one)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c := newClips(t, nil)
	url := ts.URL + "/promo.wav?sig=abc"
	pin, _, err := c.Check(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Clip(testCtx(t), url, pin); err != nil {
		t.Fatal(err)
	}
	srv.set(two) // swapped behind the reviewer's back
	_, err = c.Clip(testCtx(t), url, pin)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("swapped clip: %v, want ErrChanged", err)
	}
	if !strings.Contains(err.Error(), ts.URL+"/promo.wav") || strings.Contains(err.Error(), "abc") {
		t.Errorf("error does not name the (redacted) URL: %v", err)
	}
	t.Log(err)
}

func TestCheckRefusesBadRecordings(t *testing.T) {
	c := newClips(t, DirStore{Dir: t.TempDir()})
	ref, _ := c.Loader.Store.Put(testCtx(t), []byte("<html>not audio</html>"))
	if _, _, err := c.Check(testCtx(t), ref); !errors.Is(err, ErrUnsupported) {
		t.Errorf("html upload: %v", err)
	}
	if _, _, err := c.Check(testCtx(t), filepath.Join(t.TempDir(), "missing.wav")); err == nil || !strings.Contains(err.Error(), "missing.wav") {
		t.Errorf("missing file: %v", err)
	}
}
