package lora

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

func randVec(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// numCheck compares ana with central differences of f over every entry of x.
func numCheck(t *testing.T, name string, x, ana []float64, f func() float64) {
	t.Helper()
	const eps = 1e-6
	for i := range x {
		x0 := x[i]
		x[i] = x0 + eps
		fp := f()
		x[i] = x0 - eps
		fm := f()
		x[i] = x0
		num := (fp - fm) / (2 * eps)
		if d := math.Abs(num - ana[i]); d > 1e-6*math.Max(1, math.Abs(num)) {
			t.Fatalf("%s[%d]: analytic %.10g, numeric %.10g", name, i, ana[i], num)
		}
	}
}

func TestGradLinearLoRA(t *testing.T) {
	for _, conv := range []bool{false, true} {
		for _, dropout := range []float64{0, 0.3} {
			rng := rand.New(rand.NewPCG(1, 2))
			n, in, out, r := 5, 6, 7, 3
			l := &linear[float64]{module: "m", in: in, out: out, conv1d: conv,
				w: &param[float64]{w: randVec(rng, in*out), g: make([]float64, in*out)},
				b: &param[float64]{w: randVec(rng, out), g: make([]float64, out)}}
			l.lora = &loraBranch[float64]{r: r, scale: 1.7, dropout: dropout,
				a: &param[float64]{w: randVec(rng, r*in), g: make([]float64, r*in)},
				b: &param[float64]{w: randVec(rng, out*r), g: make([]float64, out*r)}}
			x := randVec(rng, n*in)
			dy := randVec(rng, n*out)
			y := make([]float64, n*out)
			fwd := func() float64 {
				l.forward(x, n, y, rand.New(rand.NewPCG(3, 3))) // same dropout mask every time
				return dot(y, dy)
			}
			fwd()
			dx := randVec(rng, n*in) // accumulate=false must overwrite
			l.backward(dy, dx, false)
			numCheck(t, "dx", x, dx, fwd)
			numCheck(t, "dW", l.w.w, l.w.g, fwd)
			numCheck(t, "db", l.b.w, l.b.g, fwd)
			numCheck(t, "dA", l.lora.a.w, l.lora.a.g, fwd)
			numCheck(t, "dB", l.lora.b.w, l.lora.b.g, fwd)
		}
	}
}

func TestGradAttentionRoPE(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	B, S, heads, kvHeads, hd := 2, 5, 4, 2, 4
	qd, kd := heads*hd, kvHeads*hd
	sh := attnShape{B: B, S: S, heads: heads, kvHeads: kvHeads, hd: hd, ldq: qd, ldk: kd, ldv: kd, ldo: qd}
	rope := newRopeTable[float64](S, hd, hd, 500, nil, false)
	pos := func(r int) int { return r % S }
	q, k, v := randVec(rng, B*S*qd), randVec(rng, B*S*kd), randVec(rng, B*S*kd)
	dO := randVec(rng, B*S*qd)
	o := make([]float64, B*S*qd)
	pool := &bufPool[float64]{}
	qr, kr := make([]float64, len(q)), make([]float64, len(k))
	fwd := func() float64 {
		copy(qr, q)
		copy(kr, k)
		rope.apply(qr, B*S, qd, heads, pos, false)
		rope.apply(kr, B*S, kd, kvHeads, pos, false)
		attentionForward(sh, qr, kr, v, o, pool)
		return dot(o, dO)
	}
	fwd()
	// causal: the output at position 0 depends only on position 0
	dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
	attentionBackward(sh, qr, kr, v, dO, dq, dk, dv, pool)
	rope.apply(dq, B*S, qd, heads, pos, true)
	rope.apply(dk, B*S, kd, kvHeads, pos, true)
	numCheck(t, "dq", q, dq, fwd)
	numCheck(t, "dk", k, dk, fwd)
	numCheck(t, "dv", v, dv, fwd)
	// the mask: a change at the last position leaves earlier outputs alone
	o0 := append([]float64(nil), o...)
	k[(S-1)*kd] += 1
	v[(S-1)*kd] += 1
	fwd()
	for s := 0; s < S-1; s++ {
		for j := 0; j < qd; j++ {
			if o[s*qd+j] != o0[s*qd+j] {
				t.Fatalf("position %d sees the future", s)
			}
		}
	}
}

func TestGradNorms(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 7))
	n, d := 4, 6
	x, w, b, dy := randVec(rng, n*d), randVec(rng, d), randVec(rng, d), randVec(rng, n*d)
	y := make([]float64, n*d)
	rs, mu := make([]float64, n), make([]float64, n)
	rms := func() float64 { rmsNormForward(x, w, n, d, 1e-5, y, rs); return dot(y, dy) }
	rms()
	dx, dw := make([]float64, n*d), make([]float64, d)
	rmsNormBackward(dy, x, w, rs, n, d, dx, dw)
	numCheck(t, "rmsnorm dx", x, dx, rms)
	numCheck(t, "rmsnorm dw", w, dw, rms)
	ln := func() float64 { layerNormForward(x, w, b, n, d, 1e-5, y, mu, rs); return dot(y, dy) }
	ln()
	db := make([]float64, d)
	zero(dw)
	layerNormBackward(dy, x, w, mu, rs, n, d, dx, dw, db)
	numCheck(t, "layernorm dx", x, dx, ln)
	numCheck(t, "layernorm dg", w, dw, ln)
	numCheck(t, "layernorm db", b, db, ln)
}

func TestGradActivationsAndCrossEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	n := 20
	g, u, ds := randVec(rng, n), randVec(rng, n), randVec(rng, n)
	s := make([]float64, n)
	sw := func() float64 { swigluForward(g, u, s); return dot(s, ds) }
	dg, du := make([]float64, n), make([]float64, n)
	swigluBackward(ds, g, u, dg, du)
	numCheck(t, "swiglu dg", g, dg, sw)
	numCheck(t, "swiglu du", u, du, sw)
	// the path that keeps u·silu'(g) and silu(g) from the forward pass
	// (down projection frozen) gives the same s, dg and du, in float64 and float32
	swigluForward(g, u, s)
	swigluBackward(ds, g, u, dg, du)
	g2, u2, s2 := append([]float64(nil), g...), append([]float64(nil), u...), make([]float64, n)
	dg2, du2 := make([]float64, n), make([]float64, n)
	swigluForwardDeriv(g2, u2, s2)
	swigluBackwardDeriv(ds, g2, u2, dg2, du2)
	g32, u32, ds32 := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g32[i], u32[i], ds32[i] = float32(g[i]), float32(u[i]), float32(ds[i])
	}
	s32, dg32, du32 := make([]float32, n), make([]float32, n), make([]float32, n)
	swigluForwardDeriv(g32, u32, s32)
	swigluBackwardDeriv(ds32, g32, u32, dg32, du32)
	for i := range g {
		for _, c := range []struct {
			name      string
			want, got float64
			tol       float64
		}{
			{"s", s[i], s2[i], 1e-14}, {"dg", dg[i], dg2[i], 1e-14}, {"du", du[i], du2[i], 1e-14},
			{"s32", s[i], float64(s32[i]), 1e-5}, {"dg32", dg[i], float64(dg32[i]), 1e-5}, {"du32", du[i], float64(du32[i]), 1e-5},
		} {
			if math.Abs(c.got-c.want) > c.tol*(1+math.Abs(c.want)) {
				t.Fatalf("swiglu deriv path %s[%d] = %v, want %v", c.name, i, c.got, c.want)
			}
		}
	}
	ge := func() float64 { geluForward(g, s); return dot(s, ds) }
	geluBackward(ds, g, dg)
	numCheck(t, "gelu dx", g, dg, ge)
	// GELU-tanh reference values
	geluForward([]float64{1, -1, 3}, s[:3])
	for i, want := range []float64{0.8411919906082768, -0.15880800939172324, 2.996362607918227} {
		if math.Abs(s[i]-want) > 1e-12 {
			t.Fatalf("gelu(%d) = %v, want %v", i, s[i], want)
		}
	}
	rows, V := 3, 7
	logits := randVec(rng, rows*V)
	targets := []int{2, 0, 6}
	loss := make([]float64, rows)
	ce := func() float64 {
		crossEntropyRows(logits, rows, V, targets, 0, false, loss, nil)
		return loss[0] + loss[1] + loss[2]
	}
	grad := append([]float64(nil), logits...)
	crossEntropyRows(grad, rows, V, targets, 1, true, loss, nil)
	numCheck(t, "cross-entropy", logits, grad, ce)
}

// TestDropoutMask: the mask drops about the dropout fraction, scales the
// kept inputs by 1/(1−p), and is the same for any number of threads.
func TestDropoutMask(t *testing.T) {
	const size, p = 100_003, 0.2
	x := make([]float32, size)
	for i := range x {
		x[i] = float32(i%7) + 1
	}
	mask := func(procs int) ([]uint8, []float32) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		lb := &loraBranch[float32]{dropout: p}
		xd := lb.dropoutInput(x, size, rand.New(rand.NewPCG(3, 4)))
		return append([]uint8(nil), lb.keep...), append([]float32(nil), xd...)
	}
	k1, xd1 := mask(1)
	k2, xd2 := mask(2)
	kept := 0
	for i := range k1 {
		if k1[i] != k2[i] || xd1[i] != xd2[i] {
			t.Fatalf("mask element %d differs between 1 and 2 threads", i)
		}
		want := float32(0)
		if k1[i] != 0 {
			kept++
			want = x[i] * float32(1/(1-p))
		}
		if xd1[i] != want {
			t.Fatalf("xd[%d] = %v, want %v", i, xd1[i], want)
		}
	}
	if f := float64(kept) / size; math.Abs(f-(1-p)) > 0.01 {
		t.Fatalf("kept fraction %.4f, want %.2f", f, 1-p)
	}
}
