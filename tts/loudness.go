package tts

import "math"

// Loudness measurement. vms measures loudness as a gated RMS level in dBFS (0 dBFS is
// the RMS of a full-scale square wave, 32768): the signal is cut into 20 ms blocks,
// blocks quieter than LoudnessAbsoluteGate are dropped (pauses between words), then
// blocks more than 20 dB below the mean of the rest are dropped too, and the level is
// the RMS of the blocks that remain. This is EBU R128's two-stage gating without its
// K-weighting filter: at telephone bandwidth (300–3400 Hz) the K-weighting curve is
// nearly flat, so the result tracks LUFS closely for speech, within about 1 dB.
const (
	// LoudnessAbsoluteGate is the level below which a 20 ms block counts as silence.
	LoudnessAbsoluteGate = -60.0
	// loudnessRelativeGate is how far below the ungated mean a block is dropped.
	loudnessRelativeGate = 20.0
	// loudnessPeakCeiling is the highest sample peak normalization may produce (dBFS):
	// the gain is lowered rather than clipping a loud transient.
	loudnessPeakCeiling = -1.0
	// DefaultLoudness is the default target level of every prompt, recorded or
	// synthesized, in dBFS (gated RMS as above). -20 dBFS leaves headroom for G.711
	// and is a usual level for telephone prompts.
	DefaultLoudness = -20.0
	loudnessBlock   = SampleRate / 50 // 20 ms at 8 kHz
)

// Loudness returns the gated RMS level of 8 kHz pcm in dBFS (see the package
// constants), and false when no block is louder than LoudnessAbsoluteGate, i.e. the
// audio is silence.
func Loudness(pcm []int16) (dbfs float64, ok bool) {
	var powers []float64
	for off := 0; off < len(pcm); off += loudnessBlock {
		b := pcm[off:min(off+loudnessBlock, len(pcm))]
		var sum float64
		for _, s := range b {
			sum += float64(s) * float64(s)
		}
		p := sum / float64(len(b))
		if powerDB(p) > LoudnessAbsoluteGate {
			powers = append(powers, p)
		}
	}
	if len(powers) == 0 {
		return math.Inf(-1), false
	}
	gate := powerDB(mean(powers)) - loudnessRelativeGate
	var kept []float64
	for _, p := range powers {
		if powerDB(p) > gate {
			kept = append(kept, p)
		}
	}
	return powerDB(mean(kept)), true
}

// NormalizeLoudness returns a copy of pcm scaled so that its Loudness is target dBFS
// plus volume dB, except that the gain is lowered where it would push a sample peak
// above -1 dBFS. Silence (no block above the gate) is returned unchanged.
func NormalizeLoudness(pcm []int16, target, volume float64) []int16 {
	level, ok := Loudness(pcm)
	out := make([]int16, len(pcm))
	if !ok {
		copy(out, pcm)
		return out
	}
	gain := math.Pow(10, (target+volume-level)/20)
	var peak float64
	for _, s := range pcm {
		peak = max(peak, math.Abs(float64(s)))
	}
	if ceiling := 32768 * math.Pow(10, loudnessPeakCeiling/20); peak*gain > ceiling {
		gain = ceiling / peak
	}
	for i, s := range pcm {
		out[i] = toInt16(float32(float64(s) * gain))
	}
	return out
}

// powerDB converts a mean square (in int16 units) to dBFS.
func powerDB(p float64) float64 {
	if p <= 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(p/(32768*32768))
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
