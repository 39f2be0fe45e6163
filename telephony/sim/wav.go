package sim

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WAV format of the recordings: 16-bit PCM, 8 kHz, mono.
const (
	wavSampleRate    = 8000
	wavChannels      = 1
	wavBitsPerSample = 16
	wavHeaderSize    = 44
)

// wavHeader returns the 44-byte RIFF header for dataLen bytes of samples.
func wavHeader(dataLen int) []byte {
	h := make([]byte, wavHeaderSize)
	blockAlign := wavChannels * wavBitsPerSample / 8
	copy(h[0:4], "RIFF")
	binary.LittleEndian.PutUint32(h[4:8], uint32(36+dataLen))
	copy(h[8:12], "WAVE")
	copy(h[12:16], "fmt ")
	binary.LittleEndian.PutUint32(h[16:20], 16) // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:22], 1)  // PCM
	binary.LittleEndian.PutUint16(h[22:24], wavChannels)
	binary.LittleEndian.PutUint32(h[24:28], wavSampleRate)
	binary.LittleEndian.PutUint32(h[28:32], uint32(wavSampleRate*blockAlign))
	binary.LittleEndian.PutUint16(h[32:34], uint16(blockAlign))
	binary.LittleEndian.PutUint16(h[34:36], wavBitsPerSample)
	copy(h[36:40], "data")
	binary.LittleEndian.PutUint32(h[40:44], uint32(dataLen))
	return h
}

// writeWAV writes pcm (16-bit little-endian 8 kHz mono samples) as a WAV file.
func writeWAV(path string, pcm []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(wavHeader(len(pcm))); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(pcm); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeSummary writes rec as indented JSON.
func writeSummary(path string, rec CallRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fileBase names a call's files: invite time, called number and Call-ID,
// reduced to characters safe in any file system.
func fileBase(dir string, rec CallRecord) string {
	name := fmt.Sprintf("%s_%s_%s", rec.InviteAt.UTC().Format("20060102T150405.000"), rec.To, rec.CallID)
	return filepath.Join(dir, sanitize(name))
}

// sanitize keeps letters, digits, '.', '-', '_' and '+', replaces anything
// else with '_' and caps the length.
func sanitize(s string) string {
	const maxLen = 120
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '+':
			b.WriteRune(r)
		case r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= maxLen {
			break
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if out == "" {
		out = "call"
	}
	return out
}
