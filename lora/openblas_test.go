//go:build openblas

package lora

// With -tags openblas the tests and benchmarks run on OpenBLAS through
// gonum's netlib binding: CGO_LDFLAGS="-lopenblas" go test -tags openblas.

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

func init() {
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
}
