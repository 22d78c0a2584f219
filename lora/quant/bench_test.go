package quant

import "testing"

// BenchmarkDequantize measures the decoding a product does per weight
// value (NF4, block 64, double quantization); bytes are values.
func BenchmarkDequantize(b *testing.B) {
	w := make([]float32, 1<<20)
	for i := range w {
		w[i] = float32(i%977) - 488
	}
	q, err := Quantize(w, Config{Type: NF4, BlockSize: 64, DoubleQuant: true})
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, len(w))
	b.SetBytes(int64(len(w)))
	for b.Loop() {
		q.Dequantize(0, len(w), dst)
	}
}
