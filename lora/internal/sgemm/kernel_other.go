//go:build !amd64

package sgemm

// hasKernel is false: the micro-kernel exists only for amd64, and Sgemm is
// gonum's.
const hasKernel = false

// kernel6x16 is never called without the amd64 kernel.
func kernel6x16(kc int, a *float32, aRow, aStep int, b *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int) {
	panic("sgemm: no micro-kernel on this architecture")
}

// hasAVX512 is false off amd64.
const hasAVX512 = false

// kernel12x32 is never called without the amd64 kernel.
func kernel12x32(kc int, a0, a1 *float32, aRow, aStep int, b0, b1 *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int) {
	panic("sgemm: no micro-kernel on this architecture")
}
