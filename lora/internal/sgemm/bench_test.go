package sgemm

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are the engine's typical products (m, n, k, tA, tB).
var benchShapes = []struct {
	m, n, k int
	tA, tB  blas.Transpose
}{
	{2048, 1408, 512, blas.NoTrans, blas.NoTrans},
	{2048, 1408, 512, blas.NoTrans, blas.Trans},
	{2048, 1408, 512, blas.Trans, blas.NoTrans},
	{2048, 512, 512, blas.NoTrans, blas.Trans},
	{2048, 512, 1408, blas.NoTrans, blas.Trans},
	{2048, 512, 1408, blas.NoTrans, blas.NoTrans},
	{512, 512, 2048, blas.Trans, blas.NoTrans},
	{2048, 16, 512, blas.NoTrans, blas.Trans},
	{2048, 512, 16, blas.NoTrans, blas.Trans},
	{512, 16, 2048, blas.Trans, blas.NoTrans},
	{16, 512, 2048, blas.Trans, blas.NoTrans},
	{2048, 512, 16, blas.NoTrans, blas.NoTrans},
	{2048, 2304, 768, blas.NoTrans, blas.Trans},
	{4096, 768, 3072, blas.NoTrans, blas.Trans},
	{64, 64, 64, blas.NoTrans, blas.NoTrans},
	{256, 256, 64, blas.NoTrans, blas.Trans},
	{256, 64, 256, blas.NoTrans, blas.NoTrans},
	{1, 8192, 512, blas.NoTrans, blas.Trans},
	{3, 1408, 512, blas.NoTrans, blas.Trans},
	{512, 1, 512, blas.NoTrans, blas.NoTrans},
}

func trans(t blas.Transpose) string {
	if t == blas.NoTrans {
		return "N"
	}
	return "T"
}

// BenchmarkSgemm reports GFLOP/s of this package's Sgemm on each kernel
// the CPU has (avx512, avx2) and of gonum's on the engine's shapes; run
// with -cpu 1 for single-thread figures (gonum's Sgemm uses GOMAXPROCS
// goroutines). "inplace" is the default kernel with A and B never packed,
// to check the packing thresholds.
func BenchmarkSgemm(b *testing.B) {
	defer func(saved kernelPath) { path = saved }(path)
	type impl struct {
		name string
		f    blas.Float32
		path kernelPath
	}
	var impls []impl
	for _, p := range availablePaths() {
		if p != pathGonum {
			impls = append(impls, impl{pathNames[p], Implementation{}, p})
		}
	}
	impls = append(impls, impl{"gonum", gonum.Implementation{}, path}, impl{"inplace", inPlace{}, path})
	for _, sh := range benchShapes {
		for _, impl := range impls {
			name := fmt.Sprintf("%dx%dx%d/%s%s/%s", sh.m, sh.n, sh.k, trans(sh.tA), trans(sh.tB), impl.name)
			b.Run(name, func(b *testing.B) {
				path = impl.path
				rng := rand.New(rand.NewPCG(1, 1))
				tc := gemmCase{tA: sh.tA, tB: sh.tB, m: sh.m, n: sh.n, k: sh.k, alpha: 1, beta: 1}
				a, lda, bm, ldb, c, ldc := tc.operands(rng)
				impl.f.Sgemm(sh.tA, sh.tB, sh.m, sh.n, sh.k, 1, a, lda, bm, ldb, 0, c, ldc)
				b.ResetTimer()
				for b.Loop() {
					impl.f.Sgemm(sh.tA, sh.tB, sh.m, sh.n, sh.k, 1, a, lda, bm, ldb, 0, c, ldc)
				}
				flops := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// inPlace runs Sgemm with A and (untransposed) B read in place, never
// packed, to compare against the packing thresholds.
type inPlace struct{ Implementation }

func (d inPlace) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	savedN, savedM := packAMinN, packBMinM
	packAMinN, packBMinM = 1<<30, 1<<30
	d.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	packAMinN, packBMinM = savedN, savedM
}

// BenchmarkSgemmParallel runs independent 1024×1408×512 NT products on
// GOMAXPROCS goroutines at once (as the engine does when it splits a product
// over cores) and reports the aggregate GFLOP/s of each kernel; run with
// -cpu 2.
func BenchmarkSgemmParallel(b *testing.B) {
	defer func(saved kernelPath) { path = saved }(path)
	for _, p := range availablePaths() {
		if p != pathGonum {
			path = p
			b.Run(pathNames[p], benchmarkSgemmParallel)
		}
	}
}

func benchmarkSgemmParallel(b *testing.B) {
	const m, n, k = 1024, 1408, 512
	var flops atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(2, 2))
		tc := gemmCase{tA: blas.NoTrans, tB: blas.Trans, m: m, n: n, k: k, alpha: 1}
		a, lda, bm, ldb, c, ldc := tc.operands(rng)
		for pb.Next() {
			Implementation{}.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, lda, bm, ldb, 0, c, ldc)
			flops.Add(2 * m * n * k)
		}
	})
	b.ReportMetric(float64(flops.Load())/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
