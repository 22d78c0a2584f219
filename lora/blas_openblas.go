//go:build cgo && openblas

package lora

// Built with -tags openblas (and cgo), the engine's matrix products run on
// OpenBLAS (Debian: apt-get install libopenblas-dev) through gonum's netlib
// binding; without the tag they run on gonum's pure-Go BLAS.

/*
#cgo LDFLAGS: -lopenblas
*/
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

func init() {
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
	blasBackend = "openblas"
}
