// Package vmath holds the engine's float32 exponentials: Expf, a scalar
// Cephes expf in float32 arithmetic, and Exp32Inplace and
// InvOnePlusExp32Inplace, the same polynomial eight lanes at a time in AVX2
// and FMA assembly (amd64 CPUs that have them; Expf elsewhere).
//
// They are hand-written because the vector library the engine uses for its
// other element-wise work (github.com/viterin/vek) returns garbage for
// arguments below −88 and 0 for NaN in its exp, and approximates 1/x: a
// trainer has to keep NaN (divergence must show) and saturate cleanly.
//
// The kernels sit in their own package because the lora package uses cgo
// (OpenBLAS) and Go does not assemble .s files in a cgo package.
package vmath
