package combine

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func dense(r, c int, v ...float64) *mat.Dense { return mat.NewDense(r, c, v) }

func product(a, b *mat.Dense) *mat.Dense {
	var p mat.Dense
	p.Mul(b, a)
	return &p
}

func assertClose(t *testing.T, what string, got, want mat.Matrix, tol float64) {
	t.Helper()
	if !mat.EqualApprox(got, want, tol) {
		t.Fatalf("%s:\ngot  %v\nwant %v", what, mat.Formatted(got), mat.Formatted(want))
	}
}

func randFactors(rng *rand.Rand, out, in, r int, scale float64) *Factors {
	a := mat.NewDense(r, in, nil)
	b := mat.NewDense(out, r, nil)
	a.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, a)
	b.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, b)
	return &Factors{A: a, B: b, Scale: scale}
}

func run(t *testing.T, layers []*Factors, opts Options) (a, b *mat.Dense) {
	t.Helper()
	var ranks []int
	for _, f := range layers {
		ranks = append(ranks, f.Rank())
	}
	method, rank, err := Resolve(opts, ranks)
	if err != nil {
		t.Fatal(err)
	}
	a, b, err = Module(layers, opts, method, rank, rand.New(rand.NewPCG(opts.Seed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestLinearHandComputed(t *testing.T) {
	l1 := &Factors{A: dense(1, 2, 1, 2), B: dense(2, 1, 1, 0), Scale: 1}
	l2 := &Factors{A: dense(1, 2, 3, 4), B: dense(2, 1, 0, 2), Scale: 0.5}
	// weights·scales 1 and 0.5·0.5: √ on both sides, sign on A only.
	a, b := run(t, []*Factors{l1, l2}, Options{Method: Linear, Weights: []float64{1, 0.5}})
	assertClose(t, "A", a, dense(1, 2, 2.5, 4), 1e-12)
	assertClose(t, "B", b, dense(2, 1, 1, 1), 1e-12)

	a, b = run(t, []*Factors{l1, l2}, Options{Method: Linear, Weights: []float64{1, -0.5}})
	assertClose(t, "A (negative weight)", a, dense(1, 2, -0.5, 0), 1e-12)
	assertClose(t, "B (negative weight)", b, dense(2, 1, 1, 1), 1e-12)
}

func TestSingleAdapterIsItself(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := randFactors(rng, 5, 4, 2, 2)
	for _, m := range []Method{SVD, Cat, TIES} {
		a, b := run(t, []*Factors{f}, Options{Method: m, Weights: []float64{1}, Density: 0.3})
		want := product(f.A, f.B)
		want.Scale(2, want)
		assertClose(t, string(m), product(a, b), want, 1e-12)
	}
}

func TestCatIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	l1 := randFactors(rng, 6, 5, 2, 0.5)
	l2 := randFactors(rng, 6, 5, 3, 2)
	w := []float64{0.7, -1.3}
	a, b := run(t, []*Factors{l1, l2}, Options{Method: Cat, Weights: w})
	if r, _ := a.Dims(); r != 5 {
		t.Fatalf("cat rank = %d, want 2+3", r)
	}
	want := product(l1.A, l1.B)
	want.Scale(w[0]*l1.Scale, want)
	d2 := product(l2.A, l2.B)
	d2.Scale(w[1]*l2.Scale, d2)
	want.Add(want, d2)
	assertClose(t, "cat ΔW", product(a, b), want, 1e-10)
}

func TestSVDTruncationBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	l1 := randFactors(rng, 9, 7, 3, 1)
	l2 := randFactors(rng, 9, 7, 3, 0.5)
	w := []float64{1, 0.8}
	exact := product(l1.A, l1.B)
	d2 := product(l2.A, l2.B)
	d2.Scale(w[1]*l2.Scale, d2)
	exact.Add(exact, d2)
	var ref mat.SVD
	ref.Factorize(exact, mat.SVDNone)
	sv := ref.Values(nil)

	// Full rank 6 reproduces ΔW; rank 3 is off by exactly the dropped energy.
	a, b := run(t, []*Factors{l1, l2}, Options{Method: SVD, Weights: w, SVDRank: 6})
	assertClose(t, "svd rank 6", product(a, b), exact, 1e-9)
	a, b = run(t, []*Factors{l1, l2}, Options{Method: SVD, Weights: w})
	if r, _ := a.Dims(); r != 3 {
		t.Fatalf("default svd rank = %d, want max rank 3", r)
	}
	var diff mat.Dense
	diff.Sub(product(a, b), exact)
	bound := math.Sqrt(sv[3]*sv[3] + sv[4]*sv[4] + sv[5]*sv[5])
	if got := mat.Norm(&diff, 2); math.Abs(got-bound) > 1e-9 {
		t.Fatalf("rank-3 error ‖·‖_F = %g, want the dropped energy %g", got, bound)
	}
	// Larger rank than ΔW has: padded with zeros, still exact.
	a, b = run(t, []*Factors{l1, l2}, Options{Method: SVD, Weights: w, SVDRank: 10})
	assertClose(t, "svd rank 10", product(a, b), exact, 1e-9)
}

func TestSVDClamp(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	l1 := randFactors(rng, 8, 6, 2, 1)
	l2 := randFactors(rng, 8, 6, 2, 1)
	opts := Options{Method: SVD, Weights: []float64{1, 1}, SVDRank: 2}
	a0, b0 := run(t, []*Factors{l1, l2}, opts)
	all := append(append([]float64{}, b0.RawMatrix().Data...), a0.RawMatrix().Data...)
	hi := Quantile(all, 0.9)
	opts.SVDClamp = 0.9
	a, b := run(t, []*Factors{l1, l2}, opts)
	clipped := 0
	for _, m := range []*mat.Dense{a, b} {
		for _, x := range m.RawMatrix().Data {
			if math.Abs(x) > hi+1e-12 {
				t.Fatalf("entry %g outside ±%g", x, hi)
			}
			if math.Abs(math.Abs(x)-hi) < 1e-12 {
				clipped++
			}
		}
	}
	if clipped == 0 {
		t.Fatal("no entry was clamped at the 0.9 quantile")
	}
}

func TestQuantile(t *testing.T) {
	x := []float64{4, 1, 3, 2}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {1, 4}, {0.5, 2.5}, {0.9, 3.7}} {
		if got := Quantile(x, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(%v, %g) = %g, want %g", x, c.q, got, c.want)
		}
	}
}

func TestTIESHandComputed(t *testing.T) {
	t1 := []float64{1, -2, 3, 0.5}
	t2 := []float64{-1.5, -1, 1, 4}
	// density 0.5 keeps 2 of 4: t1 → [0,-2,3,0], t2 → [-1.5,0,0,4];
	// elected signs (total) [-,-,+,+]; weighted mean of agreeing entries.
	got, err := mix(TIES, [][]float64{t1, t2}, []float64{2, 1}, 0.5, SignTotal, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{-1.5, -4, 6, 4}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("ties = %v, want %v", got, want)
		}
	}
}

func TestMajoritySignMethods(t *testing.T) {
	ts := [][]float64{{5, 0}, {-1, 0}, {-1, 0}}
	w := []float64{1, 1, 1}
	total, _ := mix(TIES, ts, w, 1, SignTotal, nil)
	freq, _ := mix(TIES, ts, w, 1, SignFrequency, nil)
	if total[0] != 5 || freq[0] != -1 {
		t.Fatalf("total elects + (sum 3) → 5, frequency elects − (2 of 3) → mean -1; got %g and %g", total[0], freq[0])
	}
	if total[1] != 0 || freq[1] != 0 {
		t.Fatalf("all-zero entry must stay 0, got %g %g", total[1], freq[1])
	}
}

func TestMagnitudePrune(t *testing.T) {
	got, _ := mix(MagnitudePrune, [][]float64{{1, -4, 2, 3}, {0.5, 0.1, -0.2, 0.3}}, []float64{1, -2}, 0.5, SignTotal, nil)
	// keep [0,-4,0,3] and [0.5,0,0,0.3]
	want := []float64{-1, -4, 0, 2.4}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("magnitude_prune = %v, want %v", got, want)
		}
	}
	if got := MagnitudePruned([]float64{1, 2}, 0); got[0] != 0 || got[1] != 0 {
		t.Fatalf("density 0 keeps nothing, got %v", got)
	}
}

func TestDAREFixedSeed(t *testing.T) {
	n := 20000
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i%7) - 3
	}
	const density = 0.3
	p1 := RandomPruned(x, density, true, rand.New(rand.NewPCG(42, 0)))
	p2 := RandomPruned(x, density, true, rand.New(rand.NewPCG(42, 0)))
	kept := 0
	for i := range x {
		if p1[i] != p2[i] {
			t.Fatal("same seed gave different masks")
		}
		switch {
		case p1[i] == 0:
		case math.Abs(p1[i]-x[i]/density) < 1e-12:
			kept++
		default:
			t.Fatalf("entry %d = %g: neither dropped nor rescaled %g/%g", i, p1[i], x[i], density)
		}
	}
	nonzero := n - n/7 // x[i]==0 every 7th entry
	if frac := float64(kept) / float64(nonzero); math.Abs(frac-density) > 0.02 {
		t.Fatalf("kept fraction %g, want about %g", frac, density)
	}
}

func TestDARELinearModuleMatchesRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	l1 := randFactors(rng, 4, 3, 2, 1)
	l2 := randFactors(rng, 4, 3, 2, 4)
	opts := Options{Method: DARELinear, Weights: []float64{1, 0.25}, Density: 0.5, Seed: 11}
	a, b := run(t, []*Factors{l1, l2}, opts)
	// Replay: A tensors are pruned first, in adapter order, then B tensors.
	r := rand.New(rand.NewPCG(11, 0))
	pa1 := RandomPruned(l1.A.RawMatrix().Data, 0.5, true, r)
	pa2 := RandomPruned(l2.A.RawMatrix().Data, 0.5, true, r)
	pb1 := RandomPruned(l1.B.RawMatrix().Data, 0.5, true, r)
	pb2 := RandomPruned(l2.B.RawMatrix().Data, 0.5, true, r)
	assertClose(t, "A", a, mat.NewDense(2, 3, WeightedSum([][]float64{pa1, pa2}, []float64{1, 1})), 1e-12)
	assertClose(t, "B", b, mat.NewDense(4, 2, WeightedSum([][]float64{pb1, pb2}, []float64{1, 1})), 1e-12)
}

func TestTIESSVDIsSVDOfTIESDelta(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	l1 := randFactors(rng, 6, 5, 2, 1)
	l2 := randFactors(rng, 6, 5, 2, 1)
	opts := Options{Method: TIESSVD, Weights: []float64{1, 1}, Density: 0.6, SVDRank: 5}
	a, b := run(t, []*Factors{l1, l2}, opts)
	d, _ := mix(TIES, [][]float64{product(l1.A, l1.B).RawMatrix().Data, product(l2.A, l2.B).RawMatrix().Data}, []float64{1, 1}, 0.6, SignTotal, nil)
	assertClose(t, "ties_svd at full rank", product(a, b), mat.NewDense(6, 5, d), 1e-9)
}

func TestResolveErrors(t *testing.T) {
	cases := []struct {
		opts  Options
		ranks []int
	}{
		{Options{Method: Linear, Weights: []float64{1, 1}}, []int{2, 4}},
		{Options{Method: "average", Weights: []float64{1, 1}}, []int{2, 2}},
		{Options{Method: TIES, Weights: []float64{1, 1}, Density: 1.5}, []int{2, 2}},
		{Options{Method: Cat, Weights: []float64{1}}, []int{2, 2}},
		{Options{Method: TIES, Weights: []float64{1, 1}, MajoritySign: "mean"}, []int{2, 2}},
	}
	for _, c := range cases {
		if _, _, err := Resolve(c.opts, c.ranks); !errors.Is(err, ErrInvalid) {
			t.Errorf("Resolve(%+v, %v) = %v, want ErrInvalid", c.opts, c.ranks, err)
		}
	}
	if m, r, err := Resolve(Options{Method: Cat, Weights: []float64{1, 1, 1}}, []int{2, 3, 4}); err != nil || m != Cat || r != 9 {
		t.Fatalf("cat: %v %d %v", m, r, err)
	}
}

func TestSVDOfProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for _, dims := range [][3]int{{20, 15, 4}, {3, 30, 5}, {30, 2, 6}} {
		f := randFactors(rng, dims[0], dims[1], dims[2], 1)
		p, err := SVDOfProduct(f.B, f.A)
		if err != nil {
			t.Fatal(err)
		}
		var ref mat.SVD
		ref.Factorize(product(f.A, f.B), mat.SVDNone)
		want := ref.Values(nil)
		for i := range p.Values {
			w := 0.0
			if i < len(want) {
				w = want[i]
			}
			if math.Abs(p.Values[i]-w) > 1e-9*(1+w) {
				t.Fatalf("dims %v: σ%d = %g, want %g", dims, i, p.Values[i], w)
			}
		}
		var us, rec mat.Dense
		us.Mul(p.U, mat.NewDiagDense(len(p.Values), p.Values))
		rec.Mul(&us, p.V.T())
		assertClose(t, "U·S·Vᵀ", &rec, product(f.A, f.B), 1e-9)
	}
}
