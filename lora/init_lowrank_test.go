package lora

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestFastPiSSAFindsTopSingularValues: on a matrix with a decaying spectrum
// (plus noise), the randomized PiSSA of pissa_niter_K recovers the top-r
// singular values (σ_k = s·|A_k|² = s·|B_k|²) and the dominant subspace, in
// both weight layouts, and residual + s·B·A = W.
func TestFastPiSSAFindsTopSingularValues(t *testing.T) {
	out, in, r, scale := 40, 30, 4, 2.0
	rng := rand.New(rand.NewPCG(1, 1))
	randOrtho := func(n, k int) *mat.Dense {
		m := mat.NewDense(n, k, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < k; j++ {
				m.Set(i, j, rng.NormFloat64())
			}
		}
		orthonormalize(m)
		return m
	}
	U, V := randOrtho(out, in), randOrtho(in, in)
	sigma := make([]float64, in)
	for k := range sigma {
		sigma[k] = 10 * math.Pow(0.6, float64(k))
	}
	var W mat.Dense
	W.Mul(U, mat.NewDiagDense(in, sigma))
	W.Mul(&W, V.T())
	for _, fifo := range []bool{false, true} {
		stored := make([]float32, out*in)
		for i := 0; i < out; i++ {
			for j := 0; j < in; j++ {
				if fifo {
					stored[j*out+i] = float32(W.At(i, j))
				} else {
					stored[i*in+j] = float32(W.At(i, j))
				}
			}
		}
		a, b, res, err := fastPiSSA(stored, out, in, r, scale, fifo, 4, rand.New(rand.NewPCG(2, 2)))
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < r; k++ {
			var na, nb float64
			for j := 0; j < in; j++ {
				na += float64(a[k*in+j]) * float64(a[k*in+j])
			}
			for i := 0; i < out; i++ {
				nb += float64(b[i*r+k]) * float64(b[i*r+k])
			}
			if math.Abs(scale*na-sigma[k]) > 1e-3*sigma[k] || math.Abs(scale*nb-sigma[k]) > 1e-3*sigma[k] {
				t.Fatalf("fifo %v: σ_%d = %v, recovered %v (A) %v (B)", fifo, k, sigma[k], scale*na, scale*nb)
			}
			// A_k is ±√(σ_k/s)·v_kᵀ
			var dot float64
			for j := 0; j < in; j++ {
				dot += float64(a[k*in+j]) * V.At(j, k)
			}
			if math.Abs(math.Abs(dot)-math.Sqrt(na)) > 1e-3*math.Sqrt(na) {
				t.Fatalf("fifo %v: A_%d is not along v_%d (|⟨A_k,v_k⟩| %v, |A_k| %v)", fifo, k, k, math.Abs(dot), math.Sqrt(na))
			}
		}
		for i := 0; i < out; i++ {
			for j := 0; j < in; j++ {
				var ba float64
				for k := 0; k < r; k++ {
					ba += float64(b[i*r+k]) * float64(a[k*in+j])
				}
				idx := i*in + j
				if fifo {
					idx = j*out + i
				}
				if math.Abs(float64(res[idx])+scale*ba-float64(stored[idx])) > 1e-5 {
					t.Fatalf("fifo %v: residual + s·B·A ≠ W at [%d,%d]", fifo, i, j)
				}
			}
		}
	}
	if _, _, _, err := fastPiSSA(make([]float32, 6), 2, 3, 3, 1, false, 2, rng); err == nil {
		t.Fatal("rank above min(out, in) accepted")
	}
}
