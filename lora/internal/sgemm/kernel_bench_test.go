package sgemm

import "testing"

// BenchmarkKernel measures each micro-kernel alone on L1-resident packed
// operands (kernel6x16's 6×16 tile, kernel12x32's 12×32 tile, at their own
// depth blocks): the ceiling for Sgemm on each path.
func BenchmarkKernel(b *testing.B) {
	b.Run(KernelAVX2, func(b *testing.B) {
		if !hasKernel {
			b.Skip("no AVX2/FMA on this CPU")
		}
		const kc = blockK
		a, bb, c := kernelOperands(tileM*kc, tileN*kc, tileM*tileN)
		for b.Loop() {
			kernel6x16(kc, &a[0], 4, 4*tileM, &bb[0], 4*tileN, &c[0], tileN, 1, 1, addC)
		}
		reportGFLOPs(b, tileM*tileN*kc)
	})
	b.Run(KernelAVX512, func(b *testing.B) {
		if !hasAVX512 {
			b.Skip("no AVX-512F on this CPU (or OS)")
		}
		const kc = blockK512
		a, bb, c := kernelOperands(tileM512*kc, tileN512*kc, tileM512*tileN512)
		for b.Loop() {
			kernel12x32(kc, &a[0], &a[tileM*kc], 4, 4*tileM, &bb[0], &bb[tileN*kc], 4*tileN, &c[0], tileN512, 1, 1, addC)
		}
		reportGFLOPs(b, tileM512*tileN512*kc)
	})
}

func kernelOperands(na, nb, nc int) (a, b, c []float32) {
	a, b, c = alignedFloats(nil, na), alignedFloats(nil, nb), alignedFloats(nil, nc)
	for i := range a {
		a[i] = 1e-3
	}
	for i := range b {
		b[i] = 1e-3
	}
	return a, b, c
}

// reportGFLOPs reports the rate of b.N products of macs multiply-adds.
func reportGFLOPs(b *testing.B, macs int) {
	b.ReportMetric(2*float64(macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
