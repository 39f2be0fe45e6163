package audio

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestOddRatesAreRefused(t *testing.T) {
	for _, r := range []int{8000, 4000, 5512, 7, 8001, 11025, 16000, 22050, 32000, 37800, 44100, 48000, 88200, 96000, 176400, 192000, 384000} {
		if err := checkRate(r); err != nil {
			t.Errorf("%d Hz refused: %v", r, err)
		}
	}
	for _, r := range []int{0, 65535, 383999, 384001, 1 << 30} {
		if err := checkRate(r); err == nil {
			t.Errorf("%d Hz accepted", r)
		}
	}
}

// TestDecodeAllocationIsBounded: a few bytes claiming a huge tag, rate or
// length cost little memory. (go-mp3 allocates an ID3 tag's declared size:
// "ID30000000" made it allocate 96 MB.)
func TestDecodeAllocationIsBounded(t *testing.T) {
	for name, data := range map[string][]byte{
		"id3 size":        []byte("ID30000000"),
		"id3 size 0xff":   []byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f\xff\xfb"),
		"id3 not sync":    []byte("ID3\x04\x00\x00\xff\xff\xff\xff\xff\xfb"),
		"wav data 4 GiB":  []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff\x00\x00"),
		"flac huge block": []byte("fLaC\x80\x00\x00\x22\xff\xff\xff\xff\x00\x00\x00\xff\xff\xff\x0b\xb8\x01\xf0\xff\xff\xff\xff" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
	} {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		_, err := Decode(data, time.Minute)
		runtime.ReadMemStats(&m1)
		if name[:3] == "id3" && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want corrupt", name, err)
		}
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 4<<20 {
			t.Errorf("%s: %d bytes allocated for %d bytes of input (%v)", name, a, len(data), err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the upload decoders (seeds in
// testdata/fuzz/FuzzDecode: small real WAV, MP3 and FLAC files and corrupt
// ones). A corrupt file gives an error wrapping one of the four refusals,
// never a panic, and what decodes stays within the duration and sample
// limits.
func FuzzDecode(f *testing.F) {
	const maxDuration = 2 * time.Second
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		d, err := Decode(data, maxDuration)
		// Inputs are small: a decoder busy for seconds is stuck.
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("decoding %d bytes took %s (%v)", len(data), el, err)
		}
		if err != nil {
			n := 0
			for _, e := range []error{ErrUnsupported, ErrCorrupt, ErrEmpty, ErrTooLong} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error wraps %d of the refusals: %v", n, err)
			}
			return
		}
		if len(d.PCM) == 0 || d.Rate < 1 || d.Rate > MaxRate || d.Channels < 1 {
			t.Fatalf("decoded %d samples at %d Hz, %d channels", len(d.PCM), d.Rate, d.Channels)
		}
		if len(d.PCM) > limit(d.Rate, maxDuration) || len(d.PCM) > MaxSamples {
			t.Fatalf("%d samples at %d Hz: over %s", len(d.PCM), d.Rate, maxDuration)
		}
		start = time.Now()
		if _, _, err := Prepare(data, Options{MaxDuration: maxDuration}); err != nil && !errors.Is(err, ErrEmpty) {
			t.Fatalf("decodes but does not prepare: %v", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("preparing %d samples at %d Hz took %s", len(d.PCM), d.Rate, el)
		}
	})
}
