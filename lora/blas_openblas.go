//go:build cgo && openblas

package lora

// Built with -tags openblas (and cgo), the engine's matrix products run on
// OpenBLAS (Debian: apt-get install libopenblas-dev) through gonum's netlib
// binding; without the tag they run on gonum's pure-Go BLAS. scripts/setup.sh,
// test.sh and quickstart.sh add the tag when libopenblas is installed.

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
)

func init() {
	openblas32 = netlib.Implementation{}
	openblas64 = netlib.Implementation{}
	setBLASThreads = func(n int) int {
		prev := int(C.openblas_get_num_threads())
		C.openblas_set_num_threads(C.int(n))
		return prev
	}
	setBLASThreads(1) // the engine splits products itself (blas.go)
	if err := UseBLAS("openblas"); err != nil {
		panic(err)
	}
}
