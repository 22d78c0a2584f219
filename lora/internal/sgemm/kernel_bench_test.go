package sgemm

import "testing"

// BenchmarkKernel measures the micro-kernel alone on L1-resident operands:
// the ceiling for Sgemm.
func BenchmarkKernel(b *testing.B) {
	if !Accelerated() {
		b.Skip("no AVX2/FMA kernel")
	}
	const kc = blockK
	a := alignedFloats(nil, tileM*kc)
	bb := alignedFloats(nil, tileN*kc)
	c := alignedFloats(nil, tileM*tileN)
	for i := range a {
		a[i] = 1e-3
	}
	for i := range bb {
		bb[i] = 1e-3
	}
	for b.Loop() {
		kernel6x16(kc, &a[0], 4, 4*tileM, &bb[0], 4*tileN, &c[0], tileN, 1, 1, addC)
	}
	flops := 2 * float64(tileM*tileN*kc) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
