package tts

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func TestPCMKeyIsUnambiguous(t *testing.T) {
	a := pcmKey("espeak-ng", "", "en", "us hello")
	b := pcmKey("espeak-ng", "", "en us", "hello")
	if a == b || len(a) != 64 {
		t.Errorf("keys %s %s", a, b)
	}
	if pcmKey("e", "c", "v", "t") != pcmKey("e", "c", "v", "t") {
		t.Error("key is not deterministic")
	}
}

func TestDiskCacheConcurrentWritersAndReaders(t *testing.T) {
	dir := t.TempDir()
	c, err := openDiskCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := pcmKey("e", "", "v", "t")
	if _, err := c.load(key); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("load before store: %v", err)
	}
	pcm := tone(440, SampleRate, 2, 5000)
	// Writers race to store the same entry while readers load it: a reader sees either
	// no file or the whole file, never a partial one.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := c.store(key, pcm); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			for range 50 {
				got, err := c.load(key)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil || !slices.Equal(got, pcm) {
					t.Errorf("partial read: %d samples, %v", len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	entries, _ := os.ReadDir(filepath.Dir(c.path(key)))
	if len(entries) != 1 {
		t.Errorf("files left in the cache: %v", entries)
	}
}

func TestOpenDiskCacheUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write anywhere")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := openDiskCache(filepath.Join(dir, "x")); err == nil {
		t.Error("no error for an unwritable directory")
	}
}
