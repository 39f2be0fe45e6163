package tts

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Two workers (two Renderers, as two processes would have, each with its own memory
// and singleflight) on one cache directory render the same prompt at the same moment:
// the cross-process lock lets exactly one of them synthesize.
func TestTwoWorkersOneSynthesis(t *testing.T) {
	requireEspeak(t)
	dir := t.TempDir()
	eng := &countingEspeak{}
	p := Prompt{Text: "Two workers, one synthesis.", Voice: "en-us"}
	for round := range 3 {
		workers := []*Renderer{newTestRenderer(t, eng, dir), newTestRenderer(t, eng, dir)}
		var wg sync.WaitGroup
		out := make([]*Audio, 8)
		for i := range out {
			wg.Go(func() {
				a, err := workers[i%2].Render(testContext(t), p, PCMU)
				if err != nil {
					t.Error(err)
				}
				out[i] = a
			})
		}
		wg.Wait()
		if n := eng.calls.Load(); n != 1 {
			t.Fatalf("round %d: %d syntheses by two workers sharing a cache, want 1", round, n)
		}
		for i := range out {
			if out[i] == nil || !bytes.Equal(out[i].Payload, out[0].Payload) {
				t.Fatalf("round %d: worker results differ", round)
			}
		}
	}
}

func TestDiskCacheEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRenderer(Espeak{}, dir, WithDiskLimit(100_000), WithMemoryLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	// Each entry is 2 s of 8 kHz PCM: 32,044 bytes. Three fit under 100,000.
	keys := []string{contentKey("a"), contentKey("b"), contentKey("c"), contentKey("d")}
	made := 0
	get := func(k string) {
		t.Helper()
		if _, err := r.CachedPCM(ctx, k, func(context.Context) ([]int16, error) { made++; return tone(440, SampleRate, 2, 5000), nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys[:3] {
		get(k)
	}
	// Use "a" so that "b" is the least recently used (modification times are the
	// recency: age them explicitly rather than sleeping).
	old := time.Now().Add(-time.Hour)
	for i, k := range keys[:3] {
		at := old.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(r.disk.path(k), at, at); err != nil {
			t.Fatal(err)
		}
	}
	get(keys[0]) // a hit: refreshes "a"
	if made != 3 {
		t.Fatalf("%d made, want 3", made)
	}
	// 4 × 32 KB > 100 KB: evicts down to 90 KB, i.e. the two least recently used,
	// "b" and "c"; "a" was written first but used last.
	get(keys[3])
	for _, k := range keys[1:3] {
		if _, err := os.Stat(r.disk.path(k)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("least recently used entry was not evicted: %v", err)
		}
	}
	for _, k := range []string{keys[0], keys[3]} {
		if _, err := os.Stat(r.disk.path(k)); err != nil {
			t.Errorf("recent entry evicted: %v", err)
		}
	}
	var total int64
	filepath.WalkDir(filepath.Join(dir, "pcm"), func(_ string, d fs.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			info, _ := d.Info()
			total += info.Size()
		}
		return nil
	})
	if total > 100_000 {
		t.Errorf("cache holds %d bytes, bound 100000", total)
	}
}
