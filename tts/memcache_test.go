package tts

import "testing"

func TestMemCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newMemCache(3 * FrameBytes)
	audio := func() *Audio { return &Audio{Codec: PCMU, Payload: make([]byte, FrameBytes)} }
	a, b, d := audio(), audio(), audio()
	c.add("a", a)
	c.add("b", b)
	c.add("c", audio())
	c.get("a") // a is now more recent than b
	c.add("d", d)
	if _, ok := c.get("b"); ok {
		t.Error("b should have been evicted")
	}
	for key, want := range map[string]*Audio{"a": a, "d": d} {
		if got, ok := c.get(key); !ok || got != want {
			t.Errorf("%s missing", key)
		}
	}
	if n, size := c.len(); n != 3 || size != 3*FrameBytes {
		t.Errorf("%d entries, %d bytes", n, size)
	}
	c.add("huge", &Audio{Payload: make([]byte, 4*FrameBytes)})
	if _, ok := c.get("huge"); ok {
		t.Error("an entry larger than the bound was kept")
	}
	off := newMemCache(0)
	off.add("a", a)
	if _, ok := off.get("a"); ok {
		t.Error("a zero-byte cache kept an entry")
	}
}
