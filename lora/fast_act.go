package lora

// Float32 kernels of the activations, on expf. The generic versions in
// ops.go dispatch here for float32 and keep float64 math for the gradient
// checks.

// swigluSig32: s = silu(g)·u, sig = σ(g).
func swigluSig32(g, u, s, sig []float32) {
	u, s, sig = u[:len(g)], s[:len(g)], sig[:len(g)]
	for i, x := range g {
		sg := 1 / (1 + expf(-x))
		sig[i] = sg
		s[i] = x * sg * u[i]
	}
}

// swigluDeriv32: s = silu(g)·u, then g ← u·silu'(g) and u ← silu(g).
func swigluDeriv32(g, u, s []float32) {
	u, s = u[:len(g)], s[:len(g)]
	for i, x := range g {
		sg := 1 / (1 + expf(-x))
		si, uv := x*sg, u[i]
		s[i] = si * uv
		g[i] = uv * sg * (1 + x*(1-sg))
		u[i] = si
	}
}

// swigluBackSig32 is swigluBack32 with σ(g) given; dg may alias sig.
func swigluBackSig32(ds, g, u, sig, dg, du []float32) {
	ds, u, sig, dg, du = ds[:len(g)], u[:len(g)], sig[:len(g)], dg[:len(g)], du[:len(g)]
	for i, x := range g {
		sg, d := sig[i], ds[i]
		du[i] = d * x * sg
		dg[i] = d * u[i] * sg * (1 + x*(1-sg))
	}
}

// tanhf is tanh through one expf.
func tanhf(x float32) float32 { return 1 - 2/(expf(2*x)+1) }

// gelu32: y = GELU-tanh(x); th (when not nil) keeps the tanh term.
func gelu32(x, y, th []float32) {
	y = y[:len(x)]
	for i, v := range x {
		t := tanhf(geluC * (v + 0.044715*v*v*v))
		if th != nil {
			th[i] = t
		}
		y[i] = 0.5 * v * (1 + t)
	}
}

// geluBack32: dx = dy·GELU'(x), the tanh term from th or recomputed (th nil); dx may alias th.
func geluBack32(dy, x, th, dx []float32) {
	dy, dx = dy[:len(x)], dx[:len(x)]
	for i, v := range x {
		var t float32
		if th != nil {
			t = th[i]
		} else {
			t = tanhf(geluC * (v + 0.044715*v*v*v))
		}
		d := 0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*0.044715*v*v)
		dx[i] = dy[i] * d
	}
}

// geluDeriv32: y = GELU-tanh(x), and x overwritten with GELU'(x).
func geluDeriv32(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		t := tanhf(geluC * (v + 0.044715*v*v*v))
		y[i] = 0.5 * v * (1 + t)
		x[i] = 0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*0.044715*v*v)
	}
}
