//go:build cgo && openblas

package lora

// Built with -tags openblas (and cgo), the engine's matrix products run on
// OpenBLAS (Debian: apt-get install libopenblas-dev) through gonum's netlib
// binding; without the tag they run on gonum's pure-Go BLAS. scripts/setup.sh,
// test.sh and quickstart.sh add the tag when libopenblas is installed.

/*
#cgo LDFLAGS: -lopenblas
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
)

func init() {
	openblas32 = netlib.Implementation{}
	openblas64 = netlib.Implementation{}
	if err := UseBLAS("openblas"); err != nil {
		panic(err)
	}
}
