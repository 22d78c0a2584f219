package lora

// bf16Kernel runs a product against a frozen BF16 weight on the BF16
// kernel; false when this CPU or build has none (the caller then decodes
// tiles for the float32 kernel).
func bf16Kernel(nt bool, n, R, C int, w []uint16, x []float32, ldx int, beta float32, y []float32, ldy int) bool {
	return false
}
