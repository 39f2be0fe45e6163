package tts

import "github.com/zaf/g711"

// Encode converts 16-bit linear PCM sampled at SampleRate to G.711 in codec, one byte per
// sample. It does not pad to a frame boundary. It returns nil for an invalid codec (use
// ParseCodec or Codec.Valid first).
func Encode(pcm []int16, codec Codec) []byte {
	var enc func(int16) uint8
	switch codec {
	case PCMU:
		enc = g711.EncodeUlawFrame
	case PCMA:
		enc = g711.EncodeAlawFrame
	default:
		return nil
	}
	out := make([]byte, len(pcm))
	for i, s := range pcm {
		out[i] = enc(s)
	}
	return out
}

// Decode converts G.711 in codec back to 16-bit linear PCM, one sample per byte. It
// returns nil for an invalid codec.
func Decode(payload []byte, codec Codec) []int16 {
	var dec func(uint8) int16
	switch codec {
	case PCMU:
		dec = g711.DecodeUlawFrame
	case PCMA:
		dec = g711.DecodeAlawFrame
	default:
		return nil
	}
	out := make([]int16, len(payload))
	for i, b := range payload {
		out[i] = dec(b)
	}
	return out
}
