package audio

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vms-project/vms/tts"
)

// Every supported encoding, written by sox (WAV, FLAC) or lame (MP3) from the same
// signal (0.4 s silence, 1 s of 1 kHz at half scale, 0.3 s silence), must decode to the
// right rate and channels and prepare to about 1.1 s of 1 kHz (the tone plus the 50 ms
// margins) at the loudness target.
func TestDecodeAndPrepareEveryFormat(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		opts     []string
		rate, ch int
		mp3      bool
	}{
		{"wav pcm8 8k mono", "a.wav", []string{"-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned-integer"}, 8000, 1, false},
		{"wav pcm16 22.05k mono", "a.wav", []string{"-r", "22050", "-c", "1", "-b", "16"}, 22050, 1, false},
		{"wav pcm16 44.1k stereo", "a.wav", []string{"-r", "44100", "-c", "2", "-b", "16"}, 44100, 2, false},
		{"wav pcm24 48k stereo", "a.wav", []string{"-r", "48000", "-c", "2", "-b", "24"}, 48000, 2, false},
		{"wav pcm32 16k mono", "a.wav", []string{"-r", "16000", "-c", "1", "-b", "32"}, 16000, 1, false},
		{"wav float32 32k mono", "a.wav", []string{"-r", "32000", "-c", "1", "-b", "32", "-e", "floating-point"}, 32000, 1, false},
		{"wav mu-law 8k mono", "a.wav", []string{"-r", "8000", "-c", "1", "-e", "u-law"}, 8000, 1, false},
		{"wav a-law 8k stereo", "a.wav", []string{"-r", "8000", "-c", "2", "-e", "a-law"}, 8000, 2, false},
		{"flac 16-bit 44.1k stereo", "a.flac", []string{"-r", "44100", "-c", "2", "-b", "16"}, 44100, 2, false},
		{"flac 24-bit 48k mono", "a.flac", []string{"-r", "48000", "-c", "1", "-b", "24"}, 48000, 1, false},
		{"mp3 44.1k stereo", "a.wav", []string{"-r", "44100", "-c", "2", "-b", "16"}, 44100, 2, true},
		{"mp3 22.05k mono", "a.wav", []string{"-r", "22050", "-c", "1", "-b", "16"}, 22050, 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := soxTone(t, tc.file, 1, 0.5, tc.opts...)
			if tc.mp3 {
				data = lameEncode(t, data)
			}
			d, err := Decode(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d.Rate != tc.rate || d.Channels != tc.ch {
				t.Errorf("decoded %d Hz %d ch, want %d Hz %d ch", d.Rate, d.Channels, tc.rate, tc.ch)
			}
			// The source is 1.7 s; MP3 adds encoder delay and padding.
			if got := d.Duration(); got < 1690*time.Millisecond || got > 1850*time.Millisecond {
				t.Errorf("decoded duration %s, want 1.7 s", got)
			}
			// Well inside the tone, whatever the codec's delay.
			mid := d.PCM[int(0.6*float64(d.Rate)):int(1.2*float64(d.Rate))]
			if f := frequency(mid, d.Rate); math.Abs(f-1000) > 10 {
				t.Errorf("decoded tone at %.1f Hz, want 1000", f)
			}
			// Half scale: a sine of amplitude 0.5 is -9.03 dBFS RMS (lossy codecs may
			// be a little off).
			if lvl := rmsDB(mid); math.Abs(lvl-(-9.03)) > 0.6 {
				t.Errorf("decoded level %.2f dBFS, want -9.03", lvl)
			}

			pcm, info, err := Prepare(data, Options{Loudness: -20})
			if err != nil {
				t.Fatal(err)
			}
			got := time.Duration(len(pcm)) * time.Second / tts.SampleRate
			if got < 1070*time.Millisecond || got > 1140*time.Millisecond {
				t.Errorf("prepared clip %s, want about 1.1 s (silence trimmed to 50 ms margins)", got)
			}
			if f := frequency(pcm[len(pcm)/4:len(pcm)*3/4], tts.SampleRate); math.Abs(f-1000) > 10 {
				t.Errorf("prepared tone at %.1f Hz, want 1000", f)
			}
			if l, _ := tts.Loudness(pcm); math.Abs(l-(-20)) > 0.3 {
				t.Errorf("prepared loudness %.2f dBFS, want -20", l)
			}
			t.Logf("%s: %s %d Hz %d ch, %s -> %s, level %.1f dBFS", tc.name, info.Format, info.Rate, info.Channels, info.Original, info.Trimmed, info.Loudness)
		})
	}
}

// Speech recorded by espeak-ng (22.05 kHz) prepares like synthesized speech: the same
// loudness as the Renderer gives the same text.
func TestPrepareSpeechMatchesSynthesizedLevel(t *testing.T) {
	requireTool(t, "espeak-ng")
	path := filepath.Join(t.TempDir(), "hello.wav")
	run(t, "espeak-ng", "-v", "en-us", "-w", path, "Hello, this is a recorded greeting.")
	data, _ := os.ReadFile(path)
	pcm, info, err := Prepare(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := tts.Loudness(pcm); math.Abs(l-tts.DefaultLoudness) > 0.3 {
		t.Errorf("prepared speech at %.2f dBFS, want %g", l, tts.DefaultLoudness)
	}
	if info.Trimmed >= info.Original || info.Trimmed < time.Second {
		t.Errorf("trimmed %s of %s", info.Trimmed, info.Original)
	}
}

func TestRefusals(t *testing.T) {
	wav := soxTone(t, "ok.wav", 1, 0.5, "-r", "16000", "-c", "1", "-b", "16")
	flac := soxTone(t, "ok.flac", 1, 0.5, "-r", "16000", "-c", "1", "-b", "16")
	corruptFLAC := append([]byte(nil), flac...)
	for i := len(corruptFLAC) / 2; i < len(corruptFLAC)/2+64 && i < len(corruptFLAC); i++ {
		corruptFLAC[i] ^= 0x5A
	}
	mp3 := lameEncode(t, wav)
	corruptMP3 := append([]byte{0xFF, 0xFB, 0x00, 0x00}, make([]byte, 600)...)
	cases := []struct {
		name string
		data []byte
		max  time.Duration
		want error
	}{
		{"no bytes", nil, 0, ErrEmpty},
		{"header only", wav[:44], 0, ErrEmpty},
		{"silence", soxSilence(t), 0, ErrEmpty},
		{"html error page", []byte("<!DOCTYPE html><html><body>404</body></html>"), 0, ErrUnsupported},
		{"random bytes", []byte("\x01\x02\x03 definitely not audio"), 0, ErrUnsupported},
		{"aac adts", append([]byte{0xFF, 0xF1, 0x50, 0x80}, make([]byte, 400)...), 0, ErrUnsupported},
		{"ogg vorbis", soxTone(t, "a.ogg", 1, 0.5), 0, ErrUnsupported},
		{"wav ima adpcm", soxTone(t, "adpcm.wav", 1, 0.5, "-e", "ima-adpcm"), 0, ErrUnsupported},
		{"wav without data chunk", wav[:36], 0, ErrCorrupt},
		{"flac damaged", corruptFLAC, 0, ErrCorrupt},
		{"flac truncated header", flac[:20], 0, ErrCorrupt},
		{"mp3 garbage frames", corruptMP3, 0, ErrCorrupt},
		{"wav over the limit", wav, 1500 * time.Millisecond, ErrTooLong},
		{"flac over the limit", flac, 1500 * time.Millisecond, ErrTooLong},
		{"mp3 over the limit", mp3, 1500 * time.Millisecond, ErrTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Prepare(tc.data, Options{MaxDuration: tc.max})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
	// The default limit is 120 s.
	long := soxTone(t, "long.wav", 121, 0.5, "-r", "8000", "-c", "1", "-b", "8", "-e", "u-law")
	if _, _, err := Prepare(long, Options{}); !errors.Is(err, ErrTooLong) {
		t.Errorf("121 s with the default limit: %v", err)
	}
}

func soxSilence(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "silence.wav")
	run(t, "sox", "-n", "-r", "8000", "-c", "1", "-b", "16", path, "trim", "0", "2")
	b, _ := os.ReadFile(path)
	return b
}

// lameEncode encodes a WAV file to MP3 with lame (constant 128 kbit/s).
func lameEncode(t testing.TB, wav []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.mp3")
	if err := os.WriteFile(in, wav, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "lame", "--quiet", "-b", "128", in, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
