package lora

import (
	"fmt"

	"github.com/loraflow/loraflow/lora/internal/sgemm"
)

// numericsFingerprint names what decides the rounding of a training step
// beyond its inputs: the BLAS backend, internal/sgemm's kernel (AVX-512,
// AVX2 or gonum's: their sums round differently), and the number of blocks large products are split into (the
// machine's CPU count, splitParts). Two processes with equal fingerprints
// give bit-identical steps; a checkpoint records it, and a resume under
// another one is allowed with a warning.
func numericsFingerprint() string {
	return fmt.Sprintf("blas=%s sgemm=%s split=%d", blasBackend, sgemm.Kernel(), splitParts)
}
