package tts

import (
	"math"
	"slices"
)

// Resampler design. The filter is a Kaiser-windowed sinc evaluated at the exact
// fractional position of every output sample (polyphase table), so any pair of rates
// works and common pairs (22050→8000: 160 phases, 48000→8000: 1 phase) are exact.
const (
	// resampleCutoff is the -6 dB point as a fraction of the lower rate's Nyquist
	// frequency: 3760 Hz when the output is 8 kHz.
	resampleCutoff = 0.94
	// resampleZeroCrossings is the number of sinc zero crossings on each side of the
	// kernel. With the Kaiser beta below it gives a transition band of about 450 Hz at
	// 8 kHz (passband flat to about 3.5 kHz, stopband from about 3.98 kHz).
	resampleZeroCrossings = 48
	// resampleBeta is the Kaiser window parameter: about 90 dB stopband attenuation.
	resampleBeta = 9.0
	// resampleMaxPhases bounds the polyphase table for awkward rate pairs; beyond it the
	// fractional position is rounded to 1/resampleMaxPhases of an input sample.
	resampleMaxPhases = 4096
	// resampleVersion names the filter in cache keys: change it whenever the design
	// constants change so cached 8 kHz PCM is regenerated.
	resampleVersion = "kaiser-sinc/v1/c0.94/z48/b9"
)

// Resample converts 16-bit PCM from fromRate to toRate (Hz) with an anti-aliased
// windowed-sinc (Kaiser) filter whose cutoff lies below the Nyquist frequency of the
// lower of the two rates. Output sample n sits at input time n·fromRate/toRate, so the
// output has ceil(len(in)·toRate/fromRate) samples and no delay; samples outside in are
// taken as zero. Equal rates return a copy. Non-positive rates return nil.
func Resample(in []int16, fromRate, toRate int) []int16 {
	if fromRate <= 0 || toRate <= 0 {
		return nil
	}
	if fromRate == toRate {
		return slices.Clone(in)
	}
	if len(in) == 0 {
		return []int16{}
	}
	return newResampler(fromRate, toRate).run(in)
}

// resampler is a polyphase windowed-sinc filter for one pair of rates.
type resampler struct {
	step, den int64     // input advances step/den samples per output sample
	phases    int       // rows in coef: tabulated fractional positions
	taps      int       // coefficients per row
	half      int       // output time t uses in[floor(t)-half+1 .. floor(t)+half]
	coef      []float32 // phases × taps, each row normalized to unit DC gain
}

func newResampler(fromRate, toRate int) *resampler {
	g := gcd(fromRate, toRate)
	r := &resampler{step: int64(fromRate / g), den: int64(toRate / g)}
	r.phases = int(min(r.den, resampleMaxPhases))

	// Cutoff in cycles per input sample, and the kernel half-width in input samples
	// (the sinc of 2·fc·d crosses zero every 1/(2·fc) samples).
	fc := resampleCutoff * 0.5 * float64(min(fromRate, toRate)) / float64(fromRate)
	width := resampleZeroCrossings / (2 * fc)
	r.half = int(math.Ceil(width)) + 1
	r.taps = 2 * r.half
	r.coef = make([]float32, r.phases*r.taps)

	row := make([]float64, r.taps)
	i0beta := besselI0(resampleBeta)
	for p := range r.phases {
		frac := float64(p) / float64(r.phases)
		var sum float64
		for i := range row {
			// Distance from the output time to input sample floor(t)-half+1+i.
			d := frac + float64(r.half-1-i)
			v := 0.0
			if x := d / width; x > -1 && x < 1 {
				v = 2 * fc * sinc(2*fc*d) * besselI0(resampleBeta*math.Sqrt(1-x*x)) / i0beta
			}
			row[i] = v
			sum += v
		}
		out := r.coef[p*r.taps : (p+1)*r.taps]
		for i, v := range row {
			out[i] = float32(v / sum)
		}
	}
	return r
}

func (r *resampler) run(in []int16) []int16 {
	f := r.runFloat(in)
	out := make([]int16, len(f))
	for i, v := range f {
		out[i] = toInt16(v)
	}
	return out
}

// runFloat filters in without rounding the output, so tests can measure stopband
// attenuation below the int16 quantization floor.
func (r *resampler) runFloat(in []int16) []float32 {
	// x[j+half] = in[j], zero elsewhere, with one spare sample for phase rounding.
	x := make([]float32, len(in)+2*r.half+1)
	for i, s := range in {
		x[i+r.half] = float32(s)
	}
	n := int((int64(len(in))*r.den + r.step - 1) / r.step)
	out := make([]float32, n)
	exact := int64(r.phases) == r.den
	for j := range out {
		pos := int64(j) * r.step
		k, rem := pos/r.den, pos%r.den
		p := int(rem)
		if !exact {
			p = int((rem*int64(r.phases) + r.den/2) / r.den)
			if p == r.phases {
				p, k = 0, k+1
			}
		}
		// in[k-half+1] is x[k+1].
		out[j] = dot(r.coef[p*r.taps:(p+1)*r.taps], x[k+1:k+1+int64(r.taps)])
	}
	return out
}

// dot returns Σ a[i]·b[i] over len(a) (b must be at least as long), with four
// accumulators so the loop is not one long dependency chain.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func toInt16(v float32) int16 {
	r := math.Round(float64(v))
	switch {
	case r > math.MaxInt16:
		return math.MaxInt16
	case r < math.MinInt16:
		return math.MinInt16
	}
	return int16(r)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind, by its
// power series Σ ((x/2)^k / k!)², to a relative precision far beyond float32.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < len(invSquares); k++ {
		term *= q * invSquares[k]
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return sum
}

// invSquares[k] is 1/k², so besselI0 multiplies instead of dividing (filter design
// evaluates it tens of thousands of times). It is never written after initialization.
var invSquares = func() (t [64]float64) {
	for k := 1; k < len(t); k++ {
		t[k] = 1 / float64(k*k)
	}
	return t
}()

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
