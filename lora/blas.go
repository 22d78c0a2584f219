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
