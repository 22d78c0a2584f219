package lora

// Float32 kernels of the activations, on the vectorised exp of vec32.go.
// The generic versions in ops.go dispatch here for float32 and keep float64
// math for the gradient checks.

// swiglu32: s = silu(g)·u.
func swiglu32(g, u, s []float32) {
	chunked32(len(g), func(lo, hi int, sig []float32) {
		sigmoid32(g[lo:hi], sig)
		gc, uc, sc := g[lo:hi], u[lo:hi], s[lo:hi]
		for i, x := range gc {
			sc[i] = x * sig[i] * uc[i]
		}
	})
}

// swigluBack32: du = ds·silu(g), dg = ds·u·silu'(g).
func swigluBack32(ds, g, u, dg, du []float32) {
	chunked32(len(g), func(lo, hi int, sig []float32) {
		gc, uc, dsc, dgc, duc := g[lo:hi], u[lo:hi], ds[lo:hi], dg[lo:hi], du[lo:hi]
		sigmoid32(gc, sig)
		for i, x := range gc { // dg may alias ds: ds[i] is read first
			sg, d := sig[i], dsc[i]
			duc[i] = d * x * sg
			dgc[i] = d * uc[i] * sg * (1 + x*(1-sg))
		}
	})
}

// swigluDeriv32: s = silu(g)·u, then g ← u·silu'(g) and u ← silu(g).
func swigluDeriv32(g, u, s []float32) {
	chunked32(len(g), func(lo, hi int, sig []float32) {
		gc, uc, sc := g[lo:hi], u[lo:hi], s[lo:hi]
		sigmoid32(gc, sig)
		for i, x := range gc {
			sg, uv := sig[i], uc[i]
			si := x * sg
			sc[i] = si * uv
			gc[i] = uv * sg * (1 + x*(1-sg))
			uc[i] = si
		}
	})
}

// geluTanh32 sets t to the tanh term of GELU-tanh: tanh(√(2/π)·(x + 0.044715x³)).
func geluTanh32(x, t []float32) {
	t = t[:len(x)]
	for i, v := range x {
		t[i] = geluC * (v + 0.044715*v*v*v)
	}
	tanh32(t)
}

// gelu32: y = GELU-tanh(x).
func gelu32(x, y []float32) {
	chunked32(len(x), func(lo, hi int, t []float32) {
		geluTanh32(x[lo:hi], t)
		xc, yc := x[lo:hi], y[lo:hi]
		for i, v := range xc {
			yc[i] = 0.5 * v * (1 + t[i])
		}
	})
}

// geluBack32: dx = dy·GELU'(x); dx may alias dy.
func geluBack32(dy, x, dx []float32) {
	chunked32(len(x), func(lo, hi int, t []float32) {
		geluTanh32(x[lo:hi], t)
		xc, dyc, dxc := x[lo:hi], dy[lo:hi], dx[lo:hi]
		for i, v := range xc {
			tv := t[i]
			d := 0.5*(1+tv) + 0.5*v*(1-tv*tv)*geluC*(1+3*0.044715*v*v)
			dxc[i] = dyc[i] * d
		}
	})
}

// geluDeriv32: y = GELU-tanh(x), and x overwritten with GELU'(x).
func geluDeriv32(x, y []float32) {
	chunked32(len(x), func(lo, hi int, t []float32) {
		xc, yc := x[lo:hi], y[lo:hi]
		geluTanh32(xc, t)
		for i, v := range xc {
			tv := t[i]
			yc[i] = 0.5 * v * (1 + tv)
			xc[i] = 0.5*(1+tv) + 0.5*v*(1-tv*tv)*geluC*(1+3*0.044715*v*v)
		}
	})
}
