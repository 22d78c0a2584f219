package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// pissaNiter returns K of init_lora_weights "pissa_niter_K" (0 for plain
// "pissa" and everything else).
func pissaNiter(v string) int {
	if k, ok := strings.CutPrefix(strings.ToLower(v), "pissa_niter_"); ok {
		if n, err := strconv.Atoi(k); err == nil && n >= 1 {
			return n
		}
	}
	return 0
}

// fastPiSSA is PEFT's "pissa_niter_K": PiSSA from an approximate top-r SVD
// by randomized subspace iteration with niter power iterations (as
// torch.svd_lowrank(W, q=r, niter=K), Halko et al. 2011), instead of a full
// SVD: O(out·in·r·niter) instead of O(out·in·min(out,in)). It returns A
// [r, in], B [out, r] and the residual W − s·B·A in W's stored layout (W is
// [in, out] when fanInFanOut). The random start comes from rng, so a run
// (and its resume) gets the same factors.
func fastPiSSA(w []float32, out, in, r int, scale float64, fanInFanOut bool, niter int, rng *rand.Rand) (a, b, residual []float32, err error) {
	if r <= 0 || r > min(out, in) {
		return nil, nil, nil, fmt.Errorf("PiSSA rank %d must be in [1, %d]", r, min(out, in))
	}
	if scale <= 0 {
		return nil, nil, nil, fmt.Errorf("PiSSA needs a positive scaling, got %g", scale)
	}
	if len(w) != out*in {
		return nil, nil, nil, fmt.Errorf("weight has %d values, not %d×%d", len(w), out, in)
	}
	d := make([]float64, len(w))
	for i, x := range w {
		d[i] = float64(x)
	}
	var W mat.Matrix = mat.NewDense(out, in, d)
	if fanInFanOut {
		W = mat.NewDense(in, out, d).T()
	}
	omega := mat.NewDense(in, r, nil)
	for i := 0; i < in; i++ {
		for k := 0; k < r; k++ {
			omega.Set(i, k, rng.NormFloat64())
		}
	}
	var y, z mat.Dense
	y.Mul(W, omega) // out×r
	orthonormalize(&y)
	for it := 0; it < niter; it++ {
		z.Mul(W.T(), &y) // in×r
		orthonormalize(&z)
		y.Mul(W, &z)
		orthonormalize(&y)
	}
	var small mat.Dense
	small.Mul(y.T(), W) // r×in
	var svd mat.SVD
	if !svd.Factorize(&small, mat.SVDThin) {
		return nil, nil, nil, fmt.Errorf("SVD of the %d×%d projection did not converge", r, in)
	}
	var ub, v, u mat.Dense
	svd.UTo(&ub)
	svd.VTo(&v)
	s := svd.Values(nil)
	u.Mul(&y, &ub) // out×r
	a, b = make([]float32, r*in), make([]float32, out*r)
	af, bf := make([]float64, r*in), make([]float64, out*r)
	for k := 0; k < r; k++ {
		root := math.Sqrt(s[k] / scale)
		for j := 0; j < in; j++ {
			af[k*in+j] = root * v.At(j, k)
			a[k*in+j] = float32(af[k*in+j])
		}
		for i := 0; i < out; i++ {
			bf[i*r+k] = u.At(i, k) * root
			b[i*r+k] = float32(bf[i*r+k])
		}
	}
	// residual from the float32 factors the adapter stores, so that
	// residual + s·B·A reproduces W as closely as float32 allows
	residual = make([]float32, out*in)
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			var ba float64
			for k := 0; k < r; k++ {
				ba += float64(b[i*r+k]) * float64(a[k*in+j])
			}
			idx := i*in + j
			if fanInFanOut {
				idx = j*out + i
			}
			residual[idx] = float32(d[idx] - scale*ba)
		}
	}
	return a, b, residual, nil
}

// orthonormalize makes the columns of m orthonormal in place by modified
// Gram–Schmidt, run twice for stability; a column that vanishes stays zero.
func orthonormalize(m *mat.Dense) {
	rows, cols := m.Dims()
	col := make([][]float64, cols)
	for k := range col {
		col[k] = mat.Col(nil, k, m)
	}
	for pass := 0; pass < 2; pass++ {
		for k := 0; k < cols; k++ {
			for p := 0; p < k; p++ {
				var dot float64
				for i := 0; i < rows; i++ {
					dot += col[p][i] * col[k][i]
				}
				for i := 0; i < rows; i++ {
					col[k][i] -= dot * col[p][i]
				}
			}
			var nrm float64
			for _, x := range col[k] {
				nrm += x * x
			}
			nrm = math.Sqrt(nrm)
			for i := range col[k] {
				if nrm > 1e-300 {
					col[k][i] /= nrm
				} else {
					col[k][i] = 0
				}
			}
		}
	}
	for k := range col {
		m.SetCol(k, col[k])
	}
}
