//go:build cgo && openblas

package lora

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestOpenBLASAgreesWithGonum: with -tags openblas the engine has the
// OpenBLAS backend, and its products agree with gonum's pure-Go BLAS within
// float32 tolerance.
func TestOpenBLASAgreesWithGonum(t *testing.T) {
	if !slices.Contains(BLASBackends(), "openblas") {
		t.Fatalf("backends %v", BLASBackends())
	}
	defer func(b string) {
		if err := UseBLAS(b); err != nil {
			t.Fatal(err)
		}
	}(BLASBackend())
	if err := UseBLAS("openblas"); err != nil {
		t.Fatal(err)
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
