package lora

import "github.com/loraflow/loraflow/lora/internal/lowp"

// bf16Kernel runs a product against a frozen BF16 weight W [R, C] on the
// BF16 kernel (lowp): y = x·Wᵀ (nt) or y = x·W, plus beta·y. It reports
// false where the kernel does not run (no AVX512_BF16, an odd reduction
// length); the caller then decodes tiles for the float32 kernel.
func bf16Kernel(nt bool, n, R, C int, w []uint16, x []float32, ldx int, beta float32, y []float32, ldy int) bool {
	if !lowp.Enabled() {
		return false
	}
	if nt {
		if C%2 != 0 {
			return false
		}
		lowp.MulNT(n, R, C, 1, x, ldx, w, C, beta, y, ldy, parallelFor)
		return true
	}
	if R%2 != 0 {
		return false
	}
	lowp.MulNN(n, C, R, 1, x, ldx, w, C, beta, y, ldy, parallelFor)
	return true
}

// BF16Kernel names the kernel that runs BF16 products in PrecisionBF16
// ("avx512bf16"), or "" where they fall back to decoding tiles for the
// float32 kernel.
func BF16Kernel() string {
	if !lowp.Enabled() {
		return ""
	}
	return lowp.Path()
}
