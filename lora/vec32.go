package lora

import (
	"math"

	"github.com/viterin/vek/vek32"

	"github.com/loraflow/loraflow/lora/internal/vmath"
)

// Vectorised float32 kernels of the element-wise work (softmax,
// cross-entropy, SwiGLU, GELU). Sums, maxima and products over whole
// slices run on github.com/viterin/vek (AVX2 assembly where the CPU has it,
// Go loops otherwise; no cgo, so the pure-Go build has them too), the
// exponentials on internal/vmath (see its doc for why not vek's), and the
// cheap per-element arithmetic stays in Go.

// vecChunk is how many elements the kernels take at once, so that the
// passes over a chunk (exp, then the arithmetic) stay in the L1 cache.
const vecChunk = 1024

// expShiftSum32 sets x[i] = exp(x[i] − shift) and returns Σ x[i].
func expShiftSum32(x []float32, shift float32) float32 {
	vek32.SubNumber_Inplace(x, shift)
	vmath.Exp32Inplace(x)
	return vek32.Sum(x)
}

// sigmoid32 sets sig[i] = σ(x[i]) = 1/(1+exp(−x[i])).
func sigmoid32(x, sig []float32) {
	sig = sig[:len(x)]
	vek32.Neg_Into(sig, x)
	vmath.InvOnePlusExp32Inplace(sig)
}

// tanh32 sets t[i] = tanh(t[i]) = 1 − 2/(exp(2t)+1), in place.
func tanh32(t []float32) {
	vek32.MulNumber_Inplace(t, 2)
	vmath.InvOnePlusExp32Inplace(t)
	for i, v := range t {
		t[i] = 1 - 2*v
	}
}

// chunked32 calls fn on consecutive sub-ranges [lo, hi) of [0, n) of at most
// vecChunk elements, with a scratch buffer of that length.
func chunked32(n int, fn func(lo, hi int, tmp []float32)) {
	pool := scratchPool[float32]()
	buf := pool.get(vecChunk)
	for lo := 0; lo < n; lo += vecChunk {
		hi := min(n, lo+vecChunk)
		fn(lo, hi, buf[:hi-lo])
	}
	pool.put(buf)
}

// softmaxRow32 turns row[:last+1] into probabilities and zeroes the rest.
func softmaxRow32(row []float32, last int) {
	live := row[:last+1]
	sum := expShiftSum32(live, vek32.Max(live))
	vek32.MulNumber_Inplace(live, 1/sum)
	clear(row[last+1:])
}

// softmaxBackRow32: d ← p ⊙ (d − Σ p⊙d) · scale over the live part, and the
// masked rest zeroed.
func softmaxBackRow32(p, d []float32, last int, scale float32) {
	pl, dl := p[:last+1], d[:last+1]
	dot := vek32.Dot(pl, dl)
	vek32.SubNumber_Inplace(dl, dot)
	vek32.Mul_Inplace(dl, pl)
	vek32.MulNumber_Inplace(dl, scale)
	clear(d[last+1:])
}

// sumSquares32 returns Σ x[i]², summed in float32 lanes, or in float64 when
// that overflows (a diverging run must stay visible as a non-finite loss,
// not turn into a zero normalisation).
func sumSquares32(x []float32) float64 {
	ss := float64(vek32.Dot(x, x))
	if math.IsInf(ss, 0) {
		ss = 0
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
	}
	return ss
}

// rmsNormForward32 is rmsNormForward on the vectorised kernels (the sum of
// squares in float32 lanes, in float64 when that overflows); rstd may be nil.
func rmsNormForward32(x, w []float32, n, d int, eps float64, y, rstd []float32) {
	w = w[:d]
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*d:(r+1)*d], y[r*d:(r+1)*d]
			rs := float32(1 / math.Sqrt(sumSquares32(xr)/float64(d)+eps))
			if rstd != nil {
				rstd[r] = rs
			}
			vek32.MulNumber_Into(yr, xr, rs)
			vek32.Mul_Inplace(yr, w)
		}
	})
}

// rmsNormBackwardInput32 writes dx = rs·(dy⊙w − x·rs·mean(dy⊙w⊙x·rs)) per row.
func rmsNormBackwardInput32(dy, x, w, rstd []float32, n, d int, dx []float32) {
	w = w[:d]
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, dyr, dxr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
			rs := rstd[r]
			vek32.Mul_Into(dxr, dyr, w) // dy⊙w
			c := vek32.Dot(dxr, xr) * rs * rs * rs / float32(d)
			for j, v := range dxr {
				dxr[j] = v*rs - xr[j]*c
			}
		}
	})
}

// layerNormForward32 is layerNormForward on the vectorised kernels (the
// row's sums in float32 lanes, in float64 when the variance overflows);
// mean and rstd may be nil.
func layerNormForward32(x, g, b []float32, n, d int, eps float64, y, mean, rstd []float32) {
	g, b = g[:d], b[:d]
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*d:(r+1)*d], y[r*d:(r+1)*d]
			mu := vek32.Sum(xr) / float32(d)
			vek32.SubNumber_Into(yr, xr, mu)
			rs := float32(1 / math.Sqrt(sumSquares32(yr)/float64(d)+eps))
			if mean != nil {
				mean[r], rstd[r] = mu, rs
			}
			vek32.MulNumber_Inplace(yr, rs)
			vek32.Mul_Inplace(yr, g)
			vek32.Add_Inplace(yr, b)
		}
	})
}

// layerNormBackwardInput32 writes dx = rs·(dy⊙g − mean(dy⊙g) − x̂·mean(dy⊙g⊙x̂))
// per row, x̂ = (x − mean)·rs.
func layerNormBackwardInput32(dy, x, g, mean, rstd []float32, n, d int, dx []float32) {
	g = g[:d]
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, dyr, dxr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
			mu, rs := mean[r], rstd[r]
			vek32.Mul_Into(dxr, dyr, g) // dy⊙g
			sum := vek32.Sum(dxr)
			s1 := sum / float32(d)
			s2 := (vek32.Dot(dxr, xr) - mu*sum) * rs / float32(d)
			for j, v := range dxr {
				dxr[j] = rs * (v - s1 - (xr[j]-mu)*rs*s2)
			}
		}
	})
}
