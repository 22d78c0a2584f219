package safetensors

import "testing"

func benchmarkDecode(b *testing.B, dt DType) {
	v := make([]float32, 1<<20)
	for i := range v {
		v[i] = float32(i) * 1e-3
	}
	raw, _ := EncodeFloat32(dt, v)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := DecodeFloat32(dt, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeF32(b *testing.B)  { benchmarkDecode(b, F32) }
func BenchmarkDecodeBF16(b *testing.B) { benchmarkDecode(b, BF16) }
func BenchmarkDecodeF16(b *testing.B)  { benchmarkDecode(b, F16) }

func BenchmarkEncodeBF16(b *testing.B) {
	v := make([]float32, 1<<20)
	for i := range v {
		v[i] = float32(i) * 1e-3
	}
	b.SetBytes(int64(len(v) * 4))
	for b.Loop() {
		if _, err := EncodeFloat32(BF16, v); err != nil {
			b.Fatal(err)
		}
	}
}
