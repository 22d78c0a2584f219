package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// sentinel fills the gaps between rows (lda > row length); A and B gaps hold
// NaN so that reading them spoils the result, C gaps a value that must stay.
const cGapSentinel = float32(-12345.5)

var transposes = []blas.Transpose{blas.NoTrans, blas.Trans, blas.ConjTrans}

type gemmCase struct {
	tA, tB      blas.Transpose
	m, n, k     int
	alpha, beta float32
	padA, padB  int // extra leading-dimension elements
	padC        int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%c tB=%c m=%d n=%d k=%d alpha=%g beta=%g pad=%d,%d,%d",
		tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

// operands builds A, B and C for tc with their leading dimensions.
func (tc gemmCase) operands(rng *rand.Rand) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	ar, ac := tc.m, tc.k
	if tc.tA != blas.NoTrans {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.tB != blas.NoTrans {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc = max(1, ac+tc.padA), max(1, bc+tc.padB), max(1, tc.n+tc.padC)
	nan := float32(math.NaN())
	a = filled(ar, ac, lda, nan, rng)
	b = filled(br, bc, ldb, nan, rng)
	c = filled(tc.m, tc.n, ldc, cGapSentinel, rng)
	if tc.beta == 0 {
		for i := range tc.m {
			for j := range tc.n {
				c[i*ldc+j] = nan
			}
		}
	}
	return a, lda, b, ldb, c, ldc
}

// filled returns a rows×cols matrix with stride ld of values in [-1, 1),
// gap between rows; its length is the minimum BLAS allows.
func filled(rows, cols, ld int, gap float32, rng *rand.Rand) []float32 {
	if rows == 0 {
		return nil
	}
	s := make([]float32, (rows-1)*ld+cols)
	for i := range s {
		if i%ld < cols {
			s[i] = 2*rng.Float32() - 1
		} else {
			s[i] = gap
		}
	}
	return s
}

// check runs tc through Implementation and gonum and compares the results.
func check(t *testing.T, tc gemmCase, rng *rand.Rand) {
	t.Helper()
	a, lda, b, ldb, c, ldc := tc.operands(rng)
	want := append([]float32(nil), c...)
	got := append([]float32(nil), c...)
	gonum.Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)

	at := func(i, p int) float32 {
		if tc.tA != blas.NoTrans {
			return a[p*lda+i]
		}
		return a[i*lda+p]
	}
	bt := func(p, j int) float32 {
		if tc.tB != blas.NoTrans {
			return b[j*ldb+p]
		}
		return b[p*ldb+j]
	}
	for i := range tc.m {
		for j := range tc.n {
			g, w := got[i*ldc+j], want[i*ldc+j]
			if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
				t.Fatalf("%v: C[%d][%d] = %v, want %v", tc, i, j, g, w)
			}
			// Tolerance: relative 1e-5 of the sum of the magnitudes of
			// the terms that make up the element.
			var mag float64
			if tc.beta != 0 {
				mag = math.Abs(float64(tc.beta) * float64(c[i*ldc+j]))
			}
			for p := range tc.k {
				mag += math.Abs(float64(tc.alpha) * float64(at(i, p)) * float64(bt(p, j)))
			}
			if d := math.Abs(float64(g) - float64(w)); d > 1e-5*mag+1e-30 {
				t.Fatalf("%v: C[%d][%d] = %v, want %v (diff %g, magnitude %g)", tc, i, j, g, w, d, mag)
			}
		}
		for j := tc.n; j < ldc && i*ldc+j < len(got); j++ {
			if got[i*ldc+j] != cGapSentinel {
				t.Fatalf("%v: gap C[%d][%d] changed to %v", tc, i, j, got[i*ldc+j])
			}
		}
	}
}

var edgeSizes = []int{1, 2, 5, 6, 7, 15, 16, 17, 63}

var scalars = [][2]float32{{1, 0}, {1, 1}, {-0.7, 2.5}, {0, 0}, {0, 1}, {0, -1.5}, {1.3, 1}, {1, 0.5}, {-2, 0}}

// TestSgemmEdgeShapes covers every combination of small sizes around the
// tile sizes, all transposes and padded leading dimensions, with A and B
// each packed and read in place.
func TestSgemmEdgeShapes(t *testing.T) {
	forEachKernel(t, testSgemmEdgeShapes)
}

func testSgemmEdgeShapes(t *testing.T) {
	for _, minN := range []int{1 << 30, 0} {
		for _, minM := range []int{1 << 30, 0} {
			t.Run(fmt.Sprintf("packAMinN=%d/packBMinM=%d", minN, minM), func(t *testing.T) {
				savedN, savedM := packAMinN, packBMinM
				packAMinN, packBMinM = minN, minM
				defer func() { packAMinN, packBMinM = savedN, savedM }()
				testEdgeShapes(t)
			})
		}
	}
}

func testEdgeShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	idx := 0
	for _, tA := range transposes {
		for _, tB := range transposes {
			for _, m := range edgeSizes {
				for _, n := range edgeSizes {
					for _, k := range edgeSizes {
						if (tA == blas.ConjTrans || tB == blas.ConjTrans) && idx%7 != 0 {
							idx++
							continue
						}
						s := scalars[idx%len(scalars)]
						check(t, gemmCase{tA: tA, tB: tB, m: m, n: n, k: k, alpha: s[0], beta: s[1],
							padA: idx % 3, padB: (idx / 3) % 3, padC: (idx / 9) % 3}, rng)
						idx++
					}
				}
			}
		}
	}
}

// TestSgemmLargeShapes crosses the cache-block sizes (k above blockK, m
// above blockM, n above blockN) with sizes that are not multiples of
// anything, narrow products (A read in place), short ones (B read in
// place) and large ones (both packed).
func TestSgemmLargeShapes(t *testing.T) { forEachKernel(t, testSgemmLargeShapes) }

func testSgemmLargeShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{
		{300, 300, 300}, {300, 17, 600}, {17, 300, 257}, {170, 63, 513},
		{337, 70, 256}, {6, 16, 1000}, {7, 4100, 5}, {63, 4097, 3}, {1, 300, 300},
		{300, 1, 300}, {2, 5, 700}, {512, 48, 16}, {341, 64, 300}, {175, 65, 260},
		// 12×32 tiles with and without row and column remainders, and
		// depths across blockK512.
		{24, 64, 385}, {180, 96, 200}, {181, 97, 193}, {12, 32, 1}, {13, 33, 7}, {36, 4100, 9},
	}
	idx := 0
	for _, sh := range shapes {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				s := scalars[idx%len(scalars)]
				check(t, gemmCase{tA: tA, tB: tB, m: sh[0], n: sh[1], k: sh[2], alpha: s[0], beta: s[1],
					padA: idx % 4, padB: (idx + 1) % 3, padC: (idx + 2) % 5}, rng)
				idx++
			}
		}
	}
}

// TestSgemmScalars runs every alpha/beta pair on a shape with edge tiles.
func TestSgemmScalars(t *testing.T) { forEachKernel(t, testSgemmScalars) }

func testSgemmScalars(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range scalars {
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				check(t, gemmCase{tA: tA, tB: tB, m: 29, n: 37, k: 270, alpha: s[0], beta: s[1], padC: 3}, rng)
				check(t, gemmCase{tA: tA, tB: tB, m: 96, n: 128, k: 70, alpha: s[0], beta: s[1], padC: 1}, rng)
			}
		}
	}
}

// TestSgemmZeroSizes checks that m, n or k zero are handled like gonum
// (k == 0 scales C by beta).
func TestSgemmZeroSizes(t *testing.T) { forEachKernel(t, testSgemmZeroSizes) }

func testSgemmZeroSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, sh := range [][3]int{{0, 5, 5}, {5, 0, 5}, {5, 5, 0}, {0, 0, 0}, {7, 17, 0}} {
		for _, beta := range []float32{0, 1, 3} {
			check(t, gemmCase{tA: blas.NoTrans, tB: blas.Trans, m: sh[0], n: sh[1], k: sh[2], alpha: 1, beta: beta, padC: 1}, rng)
		}
	}
}

// TestSgemmFallback forces gonum's path, as on CPUs without AVX2/FMA.
func TestSgemmFallback(t *testing.T) {
	saved := path
	path = pathGonum
	defer func() { path = saved }()
	if Accelerated() {
		t.Fatal("Accelerated() with the kernel switched off")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for i, sh := range [][3]int{{1, 1, 1}, {7, 17, 300}, {63, 16, 5}, {300, 6, 15}} {
		s := scalars[i%len(scalars)]
		check(t, gemmCase{tA: blas.NoTrans, tB: blas.Trans, m: sh[0], n: sh[1], k: sh[2], alpha: s[0], beta: s[1], padA: 1, padC: 2}, rng)
		check(t, gemmCase{tA: blas.Trans, tB: blas.NoTrans, m: sh[0], n: sh[1], k: sh[2], alpha: 0.5, beta: 0}, rng)
	}
}

// TestSgemmPanics checks that bad arguments panic with gonum's messages.
func TestSgemmPanics(t *testing.T) {
	s := make([]float32, 100)
	cases := []struct {
		name    string
		tA, tB  blas.Transpose
		m, n, k int
		a       []float32
		lda     int
		b       []float32
		ldb     int
		c       []float32
		ldc     int
	}{
		{"badTransA", 'X', blas.NoTrans, 2, 2, 2, s, 2, s, 2, s, 2},
		{"badTransB", blas.NoTrans, 'X', 2, 2, 2, s, 2, s, 2, s, 2},
		{"mLT0", blas.NoTrans, blas.NoTrans, -1, 2, 2, s, 2, s, 2, s, 2},
		{"nLT0", blas.NoTrans, blas.NoTrans, 2, -1, 2, s, 2, s, 2, s, 2},
		{"kLT0", blas.NoTrans, blas.NoTrans, 2, 2, -1, s, 2, s, 2, s, 2},
		{"badLdA", blas.NoTrans, blas.NoTrans, 2, 2, 3, s, 2, s, 2, s, 2},
		{"badLdATrans", blas.Trans, blas.NoTrans, 3, 2, 2, s, 2, s, 2, s, 2},
		{"badLdB", blas.NoTrans, blas.NoTrans, 2, 3, 2, s, 2, s, 2, s, 3},
		{"badLdBTrans", blas.NoTrans, blas.Trans, 2, 2, 3, s, 3, s, 2, s, 2},
		{"badLdC", blas.NoTrans, blas.NoTrans, 2, 3, 2, s, 2, s, 3, s, 2},
		{"shortA", blas.NoTrans, blas.NoTrans, 4, 2, 2, s[:7], 2, s, 2, s, 2},
		{"shortB", blas.NoTrans, blas.NoTrans, 2, 2, 4, s, 4, s[:7], 2, s, 2},
		{"shortC", blas.NoTrans, blas.NoTrans, 2, 4, 2, s, 2, s, 4, s[:7], 4},
	}
	catch := func(f func()) (r any) {
		defer func() { r = recover() }()
		f()
		return nil
	}
	for _, tc := range cases {
		want := catch(func() {
			gonum.Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, tc.a, tc.lda, tc.b, tc.ldb, 0, tc.c, tc.ldc)
		})
		got := catch(func() {
			Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, tc.a, tc.lda, tc.b, tc.ldb, 0, tc.c, tc.ldc)
		})
		if want == nil || got != want {
			t.Errorf("%s: panic %v, gonum panics with %v", tc.name, got, want)
		}
	}
}

// TestSgemmConcurrent runs many products at once from several goroutines
// (run with -race); each must match its own serial result.
func TestSgemmConcurrent(t *testing.T) { forEachKernel(t, testSgemmConcurrent) }

func testSgemmConcurrent(t *testing.T) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for it := range 20 {
				m, n, k := 1+rng.IntN(90), 1+rng.IntN(90), 1+rng.IntN(300)
				tc := gemmCase{tA: transposes[it%2], tB: transposes[(it/2)%2], m: m, n: n, k: k, alpha: 1, beta: 0}
				a, lda, b, ldb, c, ldc := tc.operands(rng)
				want := append([]float32(nil), c...)
				gonum.Implementation{}.Sgemm(tc.tA, tc.tB, m, n, k, 1, a, lda, b, ldb, 0, want, ldc)
				Implementation{}.Sgemm(tc.tA, tc.tB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
				for i := range want {
					if d := math.Abs(float64(c[i] - want[i])); d > 1e-5*float64(k) {
						errs <- fmt.Errorf("%v: element %d = %v, want %v", tc, i, c[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// forEachKernel runs test once on each assembly kernel this machine has
// (AVX-512, AVX2), forced in turn; where the CPU lacks AVX-512 but has
// AVX2, the AVX-512 path's blocking and edge handling run with the Go
// model of kernel12x32 (kernel_model_test.go) in its place. Without any
// assembly kernel it runs test once on gonum's fallback.
func forEachKernel(t *testing.T, test func(*testing.T)) {
	t.Helper()
	saved, savedKernel := path, kernel512
	defer func() { path, kernel512 = saved, savedKernel }()
	ran := false
	for _, p := range availablePaths() {
		if p == pathGonum {
			continue
		}
		path, kernel512 = p, savedKernel
		t.Run(pathNames[p], test)
		ran = true
	}
	if !hasAVX512 && hasKernel {
		path, kernel512 = pathAVX512, modelKernel12x32
		t.Run(KernelAVX512+"-model", test)
	}
	if !ran {
		t.Log("no assembly kernel on this machine: testing gonum's fallback")
		path = pathGonum
		test(t)
	}
}
