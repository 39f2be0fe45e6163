package tts

import (
	"encoding/binary"
	"slices"
	"testing"
)

func TestWAVRoundTrip(t *testing.T) {
	pcm := []int16{0, 1, -1, 32767, -32768, 1234}
	got, rate, err := parseWAV(appendWAV(nil, pcm, SampleRate))
	if err != nil || rate != SampleRate || !slices.Equal(got, pcm) {
		t.Fatalf("parseWAV(appendWAV) = %v, %d, %v", got, rate, err)
	}
}

func TestWAVStreamingHeader(t *testing.T) {
	// espeak-ng --stdout cannot seek back, so it writes sizes of ~2 GiB: the data chunk
	// runs to the end of the stream, and an odd trailing byte is dropped.
	b := appendWAV(nil, []int16{5, 6, 7}, 22050)
	binary.LittleEndian.PutUint32(b[4:], 0x7ffff024)
	binary.LittleEndian.PutUint32(b[40:], 0x7ffff000)
	got, rate, err := parseWAV(append(b, 0x01))
	if err != nil || rate != 22050 || !slices.Equal(got, []int16{5, 6, 7}) {
		t.Fatalf("got %v, %d, %v", got, rate, err)
	}
}

func TestWAVRejects(t *testing.T) {
	stereo := appendWAV(nil, []int16{1, 2}, 8000)
	binary.LittleEndian.PutUint16(stereo[22:], 2)
	for name, b := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("RIFF junk that is not a wave"),
		"stereo":  stereo,
		"no data": appendWAV(nil, nil, 8000)[:36],
	} {
		if _, _, err := parseWAV(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
