//go:build cgo && openblas

package lora

import (
	"math"
	"runtime"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestOpenBLASAgreesWithGonum: with -tags openblas the engine runs on
// OpenBLAS, and its products agree with gonum's pure-Go BLAS within float32
// tolerance.
func TestOpenBLASAgreesWithGonum(t *testing.T) {
	if BLASBackend() != "openblas" {
		t.Fatalf("backend %q", BLASBackend())
	}
	m, k, n := 67, 129, 45
	a, b := make([]float32, m*k), make([]float32, n*k)
	for i := range a {
		a[i] = float32(math.Sin(float64(i)))
	}
	for i := range b {
		b[i] = float32(math.Cos(float64(i) * 0.7))
	}
	c1, c2 := make([]float32, m*n), make([]float32, m*n)
	blas32.Implementation().Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, b, k, 0, c1, n)
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, b, k, 0, c2, n)
	for i := range c1 {
		if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-4*math.Max(1, math.Abs(float64(c2[i]))) {
			t.Fatalf("element %d: openblas %v, gonum %v", i, c1[i], c2[i])
		}
	}
}

// TestSplitGEMMMatchesWhole: the engine's split of large products into row
// or column blocks across goroutines gives the same C as one OpenBLAS call,
// for every transpose combination, with beta 0 and 1.
func TestSplitGEMMMatchesWhole(t *testing.T) {
	for _, sz := range [][3]int{{517, 45, 61}, {45, 517, 61}} {
		m, n, k := sz[0], sz[1], sz[2]
		if p, _ := splitGEMM(m, n, k); p < 2 {
			t.Fatalf("no split of %v", sz)
		}
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				lda, ldb := k+3, n+5
				if tA {
					lda = m + 3
				}
				if tB {
					ldb = k + 5
				}
				a, b := make([]float32, max(m, k)*lda), make([]float32, max(n, k)*ldb)
				for i := range a {
					a[i] = float32(math.Sin(float64(i) * 0.37))
				}
				for i := range b {
					b[i] = float32(math.Cos(float64(i) * 0.11))
				}
				for _, beta := range []float32{0, 1} {
					c1, c2 := make([]float32, m*(n+2)), make([]float32, m*(n+2))
					for i := range c1 {
						c1[i], c2[i] = float32(i%13), float32(i%13)
					}
					gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, c1, n+2)
					gemm1(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, c2, n+2)
					// the split does not depend on the thread count: bit-identical on one thread
					c3 := make([]float32, m*(n+2))
					for i := range c3 {
						c3[i] = float32(i % 13)
					}
					old := runtime.GOMAXPROCS(1)
					gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, beta, c3, n+2)
					runtime.GOMAXPROCS(old)
					if !slices.Equal(c1, c3) {
						t.Fatalf("%v tA=%v tB=%v beta=%v: split product differs between GOMAXPROCS %d and 1", sz, tA, tB, beta, old)
					}
					for i := range c1 {
						if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-5*math.Max(1, math.Abs(float64(c2[i]))) {
							t.Fatalf("%v tA=%v tB=%v beta=%v: C[%d] split %v, whole %v", sz, tA, tB, beta, i, c1[i], c2[i])
						}
					}
				}
			}
		}
	}
}
