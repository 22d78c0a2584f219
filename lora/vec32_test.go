package lora

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFloat32KernelsMatchFloat64: the vectorised float32 kernels (vec32.go,
// fast_act.go) give the float64 reference values, over lengths that span
// several chunks and end mid-vector, and inputs from −20 to 20.
func TestFloat32KernelsMatchFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	n := 2*vecChunk + 37
	wide := func() []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = 40*rng.Float64() - 20
		}
		return v
	}
	to32 := func(v []float64) []float32 {
		o := make([]float32, len(v))
		for i, x := range v {
			o[i] = float32(x)
		}
		return o
	}
	near := func(name string, want []float64, got []float32, tol float64) {
		t.Helper()
		for i := range want {
			if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	g, u, ds := wide(), randVec(rng, n), randVec(rng, n)
	g32, u32, ds32 := to32(g), to32(u), to32(ds)
	s, dg, du := make([]float64, n), make([]float64, n), make([]float64, n)
	s32, dg32, du32 := make([]float32, n), make([]float32, n), make([]float32, n)

	swigluForward(g, u, s)
	swigluBackward(ds, g, u, dg, du)
	swigluForward(g32, u32, s32)
	near("swiglu s", s, s32, 5e-6)
	swigluBackward(ds32, g32, u32, dg32, du32)
	near("swiglu dg", dg, dg32, 5e-6)
	near("swiglu du", du, du32, 5e-6)
	// in place, as the backward pass runs it: dg over ds
	dsg := append([]float32(nil), ds32...)
	swigluBackward(dsg, g32, u32, dsg, du32)
	near("swiglu dg in place", dg, dsg, 5e-6)
	near("swiglu du (dg in place)", du, du32, 5e-6)

	x, x32 := g, g32
	y, dx := make([]float64, n), make([]float64, n)
	y32, dx32 := make([]float32, n), make([]float32, n)
	geluForward(x, y)
	geluBackward(ds, x, dx)
	geluForward(x32, y32)
	near("gelu y", y, y32, 5e-6)
	geluBackward(ds32, x32, dx32)
	near("gelu dx", dx, dx32, 5e-6)
	dxg := append([]float32(nil), ds32...)
	geluBackward(dxg, x32, dxg)
	near("gelu dx in place", dx, dxg, 5e-6)
	d32 := append([]float32(nil), x32...)
	geluForwardDeriv(d32, y32)
	near("gelu(deriv) y", y, y32, 5e-6)
	geluBackwardDeriv(ds32, d32, dx32)
	near("gelu(deriv) dx", dx, dx32, 5e-6)

	// RMSNorm, rows of 517 (not a multiple of the vector width)
	rows, d := 4, 517
	xn, wn, dyn := wide()[:rows*d], randVec(rng, d), randVec(rng, rows*d)
	yn, rsn, dxn, dwn := make([]float64, rows*d), make([]float64, rows), make([]float64, rows*d), make([]float64, d)
	rmsNormForward(xn, wn, rows, d, 1e-6, yn, rsn)
	rmsNormBackward(dyn, xn, wn, rsn, rows, d, dxn, dwn)
	yn32, rsn32, dxn32, dwn32 := make([]float32, rows*d), make([]float32, rows), make([]float32, rows*d), make([]float32, d)
	rmsNormForward(to32(xn), to32(wn), rows, d, 1e-6, yn32, rsn32)
	near("rmsnorm y", yn, yn32, 5e-6)
	near("rmsnorm rstd", rsn, rsn32, 5e-6)
	rmsNormBackward(to32(dyn), to32(xn), to32(wn), rsn32, rows, d, dxn32, dwn32)
	near("rmsnorm dx", dxn, dxn32, 5e-6)
	near("rmsnorm dw", dwn, dwn32, 5e-6)

	// LayerNorm, the same rows
	bn := randVec(rng, d)
	mun, dbn, dgn := make([]float64, rows), make([]float64, d), make([]float64, d)
	layerNormForward(xn, wn, bn, rows, d, 1e-5, yn, mun, rsn)
	layerNormBackward(dyn, xn, wn, mun, rsn, rows, d, dxn, dgn, dbn)
	mun32, dbn32, dgn32 := make([]float32, rows), make([]float32, d), make([]float32, d)
	layerNormForward(to32(xn), to32(wn), to32(bn), rows, d, 1e-5, yn32, mun32, rsn32)
	near("layernorm y", yn, yn32, 5e-6)
	near("layernorm mean", mun, mun32, 5e-6)
	near("layernorm rstd", rsn, rsn32, 5e-6)
	clear(dwn32)
	layerNormBackward(to32(dyn), to32(xn), to32(wn), mun32, rsn32, rows, d, dxn32, dgn32, dbn32)
	near("layernorm dx", dxn, dxn32, 5e-6)
	near("layernorm dg", dgn, dgn32, 5e-6)
	near("layernorm db", dbn, dbn32, 5e-6)

	// softmax rows: live prefixes of several lengths, masked tails zeroed
	for _, last := range []int{0, 6, 7, 8, 200, n - 1} {
		row := wide()
		row32 := to32(row)
		for i := range row32[last+1:] {
			row32[last+1+i] = float32(math.NaN()) // the masked part is written
		}
		softmaxCausalRow(row, last)
		softmaxCausalRow(row32, last)
		near("softmax", row, row32, 5e-6)
	}

	// cross-entropy over rows wider than a chunk, with and without gradients
	rows, V := 3, n
	logits := make([]float64, 0, rows*V)
	for range rows {
		logits = append(logits, wide()...)
	}
	logits32 := to32(logits)
	targets := []int{0, V / 2, V - 1}
	loss, loss32 := make([]float64, rows), make([]float64, rows)
	ok, ok32 := make([]bool, rows), make([]bool, rows)
	crossEntropyRows(logits32, rows, V, targets, 0.5, false, loss32, ok32)
	grad := append([]float64(nil), logits...)
	crossEntropyRows(grad, rows, V, targets, 0.5, true, loss, ok)
	for r := range rows {
		if math.Abs(loss32[r]-loss[r]) > 1e-5*(1+loss[r]) || ok32[r] != ok[r] {
			t.Fatalf("cross-entropy row %d without gradient: loss %v argmax %v, want %v %v", r, loss32[r], ok32[r], loss[r], ok[r])
		}
	}
	crossEntropyRows(logits32, rows, V, targets, 0.5, true, loss32, ok32)
	near("cross-entropy gradient", grad, logits32, 5e-6)
	for r := range rows {
		if math.Abs(loss32[r]-loss[r]) > 1e-5*(1+loss[r]) {
			t.Fatalf("cross-entropy row %d: loss %v, want %v", r, loss32[r], loss[r])
		}
	}
	// a NaN logit gives a NaN loss, not a panic
	nan := []float32{1, float32(math.NaN()), 2}
	crossEntropyRows(nan, 1, 3, []int{0}, 1, true, loss32[:1], nil)
	if !math.IsNaN(loss32[0]) {
		t.Fatalf("cross-entropy of a NaN row: loss %v, want NaN", loss32[0])
	}
}

// TestAttentionFloat32MatchesFloat64: the float32 attention (its softmax
// and softmax-gradient rows on the vectorised kernels) gives the float64
// values and gradients.
func TestAttentionFloat32MatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	B, S, heads, hd := 2, attnTile+19, 2, 8
	d := heads * hd
	sh := attnShape{B: B, S: S, heads: heads, kvHeads: heads, hd: hd, ldq: d, ldk: d, ldv: d, ldo: d}
	q, k, v, dO := randVec(rng, B*S*d), randVec(rng, B*S*d), randVec(rng, B*S*d), randVec(rng, B*S*d)
	o, dq, dk, dv := make([]float64, B*S*d), make([]float64, B*S*d), make([]float64, B*S*d), make([]float64, B*S*d)
	attentionForward(sh, q, k, v, o, &bufPool[float64]{})
	attentionBackward(sh, q, k, v, dO, dq, dk, dv, &bufPool[float64]{})
	c := func(x []float64) []float32 {
		o := make([]float32, len(x))
		for i, v := range x {
			o[i] = float32(v)
		}
		return o
	}
	o32, dq32, dk32, dv32 := make([]float32, B*S*d), make([]float32, B*S*d), make([]float32, B*S*d), make([]float32, B*S*d)
	q32, k32, v32, dO32 := c(q), c(k), c(v), c(dO)
	attentionForward(sh, q32, k32, v32, o32, &bufPool[float32]{})
	attentionBackward(sh, q32, k32, v32, dO32, dq32, dk32, dv32, &bufPool[float32]{})
	for _, p := range []struct {
		name string
		want []float64
		got  []float32
	}{{"o", o, o32}, {"dq", dq, dq32}, {"dk", dk, dk32}, {"dv", dv, dv32}} {
		for i := range p.want {
			if math.Abs(float64(p.got[i])-p.want[i]) > 1e-5*(1+math.Abs(p.want[i])) {
				t.Fatalf("%s[%d] = %v, want %v", p.name, i, p.got[i], p.want[i])
			}
		}
	}
}
