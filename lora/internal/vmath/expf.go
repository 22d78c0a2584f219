package vmath

import "math"

// Expf is exp for float32 in float32 arithmetic (Cephes expf): x = n·ln2 + r
// with |r| ≤ ln2/2, e^r by a degree-7 polynomial, 2^n put into the exponent.
// Relative error under 3e-7 (a few float32 ulp); outside [−87, 88] (and for
// NaN) it falls back to math.Exp.
func Expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	if !(x >= -87 && x <= 88) { // the tails (subnormal, overflow) and NaN
		return float32(math.Exp(float64(x)))
	}
	n := int32(log2e*x + 128.5) // round(x·log2e)+128; the argument is positive here, so truncation floors
	fn := float32(n - 128)
	r := x - fn*ln2hi - fn*ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(n-1)<<23) // 2^(n−128)
}

// invOnePlusExpf is 1/(1 + exp(x)) on Expf.
func invOnePlusExpf(x float32) float32 { return 1 / (1 + Expf(x)) }
