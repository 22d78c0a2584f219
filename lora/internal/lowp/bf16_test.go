package lowp

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// paths lists the kernels this machine can run (every one is tested).
func paths(t *testing.T) []string {
	ps := []string{PathGo}
	if Accelerated() {
		ps = append(ps, PathAVX512BF16)
	} else {
		t.Logf("this CPU has no AVX512_BF16: only the Go path is tested")
	}
	return ps
}

func withPath(t *testing.T, p string) {
	t.Helper()
	if err := Force(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Force("") })
}

func randBF16(rng *rand.Rand, n int) []uint16 {
	w := make([]uint16, n)
	for i := range w {
		w[i] = ToBF16(float32(rng.NormFloat64()))
	}
	return w
}

func randF32(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// goPar is a Parallel on goroutines, one per chunk of grain.
func goPar(n, grain int, fn func(lo, hi int)) {
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += grain {
		wg.Add(1)
		go func(lo int) { defer wg.Done(); fn(lo, min(n, lo+grain)) }(lo)
	}
	wg.Wait()
}

// The products against the float64 reference over edge shapes (around the
// 12×32 tile), strides, alpha and beta. Tolerances: with x rounded to BF16
// as the kernel does, the only error is the float32 summation, at most
// k·2⁻²⁴·Σ|x_p·w_p| (2× for margin); against the unrounded x, BF16's
// 2⁻⁸ relative rounding of each x adds 2⁻⁸·Σ|x_p·w_p|.
func TestMulAgainstReference(t *testing.T) {
	ms := []int{1, 5, 12, 13, 31, 32, 33, 70}
	ns := []int{1, 11, 12, 25, 32, 33, 64, 77}
	ks := []int{0, 2, 6, 32, 34, 130}
	for _, path := range paths(t) {
		withPath(t, path)
		rng := rand.New(rand.NewPCG(1, 2))
		for _, nt := range []bool{true, false} {
			for _, m := range ms {
				for _, n := range ns {
					for _, k := range ks {
						for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, -0.75}} {
							alpha, beta := ab[0], ab[1]
							pad := rng.IntN(3)
							ldx, ldy := k+pad, n+pad
							var wRows, wCols int
							if nt {
								wRows, wCols = n, k
							} else {
								wRows, wCols = k, n
							}
							ldw := wCols + rng.IntN(3)
							x := randF32(rng, max(0, (m-1)*ldx+k))
							w := randBF16(rng, max(0, (wRows-1)*ldw+wCols))
							y := randF32(rng, (m-1)*ldy+n)
							if beta == 0 {
								for i := range y {
									y[i] = float32(math.NaN()) // must be overwritten, not read
								}
							}
							y0 := append([]float32(nil), y...)
							var par Parallel
							if rng.IntN(2) == 0 {
								par = goPar
							}
							if nt {
								MulNT(m, n, k, alpha, x, ldx, w, ldw, beta, y, ldy, par)
							} else {
								MulNN(m, n, k, alpha, x, ldx, w, ldw, beta, y, ldy, par)
							}
							for i := 0; i < m; i++ {
								for j := 0; j < n; j++ {
									var sum, sumX, abs float64
									for p := 0; p < k; p++ {
										var wv float64
										if nt {
											wv = float64(bf(w[j*ldw+p]))
										} else {
											wv = float64(bf(w[p*ldw+j]))
										}
										xv := float64(x[i*ldx+p])
										sum += float64(bf(ToBF16(x[i*ldx+p]))) * wv
										sumX += xv * wv
										abs += math.Abs(xv * wv)
									}
									want := float64(alpha) * sum
									wantX := float64(alpha) * sumX
									if beta != 0 {
										want += float64(beta) * float64(y0[i*ldy+j])
										wantX += float64(beta) * float64(y0[i*ldy+j])
									}
									got := float64(y[i*ldy+j])
									scale := math.Abs(float64(alpha)) * abs
									tol := 2*float64(k)*0x1p-24*scale + 1e-6*math.Abs(want) + 1e-30
									if math.IsNaN(got) || math.Abs(got-want) > tol {
										t.Fatalf("%s nt=%v m=%d n=%d k=%d alpha=%v beta=%v: y[%d][%d] = %v, want %v (tol %g)", path, nt, m, n, k, alpha, beta, i, j, got, want, tol)
									}
									if d := math.Abs(got - wantX); d > 0x1p-8*scale+tol {
										t.Fatalf("%s nt=%v m=%d n=%d k=%d: y[%d][%d] = %v, unrounded-x reference %v", path, nt, m, n, k, i, j, got, wantX)
									}
								}
							}
							// the padding between rows is left alone
							for i := 0; i < m-1; i++ {
								for j := n; j < ldy; j++ {
									if a, b := y[i*ldy+j], y0[i*ldy+j]; a != b && !(math.IsNaN(float64(a)) && math.IsNaN(float64(b))) {
										t.Fatalf("%s: y[%d][%d] outside the product was written", path, i, j)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// The result does not depend on the goroutines, and the assembly path
// agrees with the Go path within the summation tolerance.
func TestMulDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, n, k := 70, 100, 258
	x := randF32(rng, m*k)
	w := randBF16(rng, n*k)
	results := map[string][]float32{}
	for _, path := range paths(t) {
		withPath(t, path)
		a := make([]float32, m*n)
		b := make([]float32, m*n)
		MulNT(m, n, k, 1, x, k, w, k, 0, a, n, nil)
		MulNT(m, n, k, 1, x, k, w, k, 0, b, n, goPar)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%s: serial and parallel results differ at %d: %v, %v", path, i, a[i], b[i])
			}
		}
		results[path] = a
	}
	if g, a := results[PathGo], results[PathAVX512BF16]; a != nil {
		for i := range g {
			if d := math.Abs(float64(g[i] - a[i])); d > 1e-4*(1+math.Abs(float64(g[i]))) {
				t.Fatalf("go and avx512bf16 differ at %d: %v, %v", i, g[i], a[i])
			}
		}
	}
}

// ToBF16 against values whose rounding is known.
func TestToBF16(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf
		{0x00000001, 0x0000}, // denormal reads as zero
		{0x80400000, 0x8000}, // negative denormal
		{0x7fc00001, 0x7fc0}, // quiet NaN
		{0x7f800001, 0x7fc0}, // signalling NaN made quiet
		{0xff800000, 0xff80}, // -Inf
	} {
		if got := ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if !Accelerated() {
		return
	}
	withPath(t, PathAVX512BF16)
	rng := rand.New(rand.NewPCG(5, 6))
	src := make([]float32, 96)
	for i := range src {
		src[i] = math.Float32frombits(rng.Uint32())
	}
	dst := make([]uint16, len(src))
	convertRow(dst, src)
	for i, v := range src {
		if want := ToBF16(v); dst[i] != want && !(math.IsNaN(float64(v)) && dst[i]&0x7fc0 == 0x7fc0) {
			t.Errorf("VCVTNE2PS2BF16(%#08x) = %#04x, ToBF16 %#04x", math.Float32bits(v), dst[i], want)
		}
	}
}

func TestForce(t *testing.T) {
	if err := Force("sse"); err == nil {
		t.Error("Force accepted an unknown path")
	}
	if !Accelerated() {
		if err := Force(PathAVX512BF16); err == nil {
			t.Error("Force accepted avx512bf16 on a CPU without it")
		}
	}
	withPath(t, PathGo)
	if !Enabled() || Path() != PathGo {
		t.Errorf("forced go: Enabled %v, Path %s", Enabled(), Path())
	}
}
