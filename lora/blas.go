package lora

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// The OpenBLAS implementations, set by blas_openblas.go when the binary is
// built with -tags openblas (and cgo); nil otherwise.
var (
	openblas32 blas.Float32
	openblas64 blas.Float64
)

// setBLASThreads sets OpenBLAS's thread count and returns the previous one
// (nil without OpenBLAS).
var setBLASThreads func(n int) int

// concurrentGEMMs runs fn, whose goroutines call gemm concurrently (one
// small product each, as attention does per head). OpenBLAS then runs single
// threaded: its thread pool serves one caller at a time, and concurrent
// callers of a multi-threaded OpenBLAS wait on each other and spin.
func concurrentGEMMs(fn func()) {
	if setBLASThreads == nil || blasBackend != "openblas" {
		fn()
		return
	}
	prev := setBLASThreads(1)
	defer setBLASThreads(prev)
	fn()
}

// BLASBackends lists the backends this binary can run on, the default first.
func BLASBackends() []string {
	if openblas32 != nil {
		return []string{"openblas", "gonum"}
	}
	return []string{"gonum"}
}

// UseBLAS switches the engine's matrix products to the named backend,
// "openblas" (only in a binary built with -tags openblas) or "gonum" (pure
// Go). It is meant for benchmarks and tests that compare the two; call it
// before training, not during.
func UseBLAS(name string) error {
	switch name {
	case "gonum":
		blas32.Use(gonum.Implementation{})
		blas64.Use(gonum.Implementation{})
	case "openblas":
		if openblas32 == nil {
			return fmt.Errorf("lora: BLAS backend %q: this binary was built without -tags openblas (and cgo)", name)
		}
		blas32.Use(openblas32)
		blas64.Use(openblas64)
	default:
		return fmt.Errorf("lora: unknown BLAS backend %q (want openblas or gonum)", name)
	}
	blasBackend = name
	return nil
}
