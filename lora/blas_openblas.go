//go:build cgo && openblas

package lora

// Built with -tags openblas (and cgo), the engine can run its matrix
// products on OpenBLAS (Debian: apt-get install libopenblas-dev) through
// gonum's netlib binding; it starts on it where OpenBLAS measured fastest
// for the CPU's family (blas_default.go) or LORAFLOW_BLAS=openblas says so.
// scripts/setup.sh, test.sh and quickstart.sh add the tag when libopenblas
// is installed.

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
)

// registered is set while package variables initialise, before any init
// function runs, so that blas.go's init (the default backend's choice) sees
// OpenBLAS.
var registered = registerOpenBLAS()

func registerOpenBLAS() bool {
	openblas32 = netlib.Implementation{}
	openblas64 = netlib.Implementation{}
	setBLASThreads = func(n int) int {
		prev := int(C.openblas_get_num_threads())
		C.openblas_set_num_threads(C.int(n))
		return prev
	}
	setBLASThreads(1) // the engine splits products itself (blas.go)
	return true
}
