package tts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
)

// WAVChunks yields the ID and body of each chunk of the RIFF/WAVE file b, after
// its 12-byte header (which it does not check). A chunk whose size runs past the
// end of b, as in the streaming header espeak-ng --stdout writes, is cut to what
// b holds.
func WAVChunks(b []byte) iter.Seq2[string, []byte] {
	return func(yield func(id string, body []byte) bool) {
		for off := 12; off+8 <= len(b); {
			id := string(b[off : off+4])
			size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
			body := b[off+8:]
			if size < len(body) {
				body = body[:size]
			}
			if !yield(id, body) {
				return
			}
			off += 8 + size + size&1 // chunks are padded to even sizes
			if size < 0 || off < 0 {
				return // overflow on 32-bit platforms
			}
		}
	}
}

// parseWAV decodes a mono 16-bit PCM WAV file. It accepts the streaming header that
// espeak-ng --stdout writes (RIFF and data sizes of about 2 GiB, not the real length)
// by reading the data chunk up to the end of b, and ignores a trailing odd byte.
func parseWAV(b []byte) (pcm []int16, rate int, err error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	var haveFmt bool
	for id, body := range WAVChunks(b) {
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels := binary.LittleEndian.Uint16(body[2:4])
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits := binary.LittleEndian.Uint16(body[14:16])
			if (format != 1 && format != 0xFFFE) || channels != 1 || bits != 16 || rate <= 0 {
				return nil, 0, fmt.Errorf("unsupported WAV format %d, %d channels, %d bits, %d Hz: want mono 16-bit PCM", format, channels, bits, rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, errors.New("data chunk before fmt chunk")
			}
			pcm = make([]int16, len(body)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return pcm, rate, nil
		}
	}
	return nil, 0, errors.New("no data chunk")
}

// appendWAV appends a mono 16-bit PCM WAV file of pcm at rate to dst.
func appendWAV(dst []byte, pcm []int16, rate int) []byte {
	n := uint32(2 * len(pcm))
	dst = append(dst, "RIFF"...)
	dst = binary.LittleEndian.AppendUint32(dst, 36+n)
	dst = append(dst, "WAVEfmt "...)
	dst = binary.LittleEndian.AppendUint32(dst, 16)
	dst = binary.LittleEndian.AppendUint16(dst, 1) // PCM
	dst = binary.LittleEndian.AppendUint16(dst, 1) // mono
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate)*2)
	dst = binary.LittleEndian.AppendUint16(dst, 2)  // block align
	dst = binary.LittleEndian.AppendUint16(dst, 16) // bits per sample
	dst = append(dst, "data"...)
	dst = binary.LittleEndian.AppendUint32(dst, n)
	for _, s := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}
