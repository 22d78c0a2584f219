package lora

import (
	"math"

	"github.com/viterin/vek/vek32"
)

// rowGrain is the number of rows a goroutine handles at once in row-wise ops.
const rowGrain = 16

// reduceRows computes out[j] += Σ_rows f(row, j) with per-chunk partial sums
// added in chunk order, so the result does not depend on the thread count.
func reduceRows[T float](n, d int, out []T, f func(r int, acc []T)) {
	if out == nil {
		return
	}
	chunks := (n + rowGrain - 1) / rowGrain
	pool := scratchPool[T]()
	part := pool.get(chunks * d)
	defer pool.put(part)
	clear(part)
	parallelFor(n, rowGrain, func(lo, hi int) {
		acc := part[(lo/rowGrain)*d : (lo/rowGrain+1)*d]
		for r := lo; r < hi; r++ {
			f(r, acc)
		}
	})
	for c := 0; c < chunks; c++ {
		p := part[c*d : (c+1)*d]
		for j := range out {
			out[j] += p[j]
		}
	}
}

// rmsNormForward: y = x · rstd · w with rstd = 1/√(mean(x²)+eps), per row of d.
// rstd may be nil (inference).
func rmsNormForward[T float](x, w []T, n, d int, eps float64, y, rstd []T) {
	if x32, ok := any(x).([]float32); ok {
		rmsNormForward32(x32, any(w).([]float32), n, d, eps, any(y).([]float32), any(rstd).([]float32))
		return
	}
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*d : (r+1)*d]
			var ss float64
			for _, v := range xr {
				ss += float64(v) * float64(v)
			}
			rs := T(1 / math.Sqrt(ss/float64(d)+eps))
			if rstd != nil {
				rstd[r] = rs
			}
			yr := y[r*d : (r+1)*d]
			for j, v := range xr {
				yr[j] = v * rs * w[j]
			}
		}
	})
}

// rmsNormBackward writes dx and adds to dw (when not nil).
func rmsNormBackward[T float](dy, x, w, rstd []T, n, d int, dx, dw []T) {
	if x32, ok := any(x).([]float32); ok {
		rmsNormBackwardInput32(any(dy).([]float32), x32, any(w).([]float32), any(rstd).([]float32), n, d, any(dx).([]float32))
	} else {
		rmsNormBackwardInput(dy, x, w, rstd, n, d, dx)
	}
	reduceRows(n, d, dw, func(r int, acc []T) {
		xr, dyr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d]
		rs := rstd[r]
		for j := range acc {
			acc[j] += dyr[j] * xr[j] * rs
		}
	})
}

// rmsNormBackwardInput writes dx of rmsNormBackward.
func rmsNormBackwardInput[T float](dy, x, w, rstd []T, n, d int, dx []T) {
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, dyr, dxr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
			rs := float64(rstd[r])
			var dot float64
			for j := range xr {
				dot += float64(dyr[j]) * float64(w[j]) * float64(xr[j]) * rs
			}
			dot /= float64(d)
			for j := range xr {
				xh := float64(xr[j]) * rs
				dxr[j] = T(rs * (float64(dyr[j])*float64(w[j]) - xh*dot))
			}
		}
	})
}

// layerNormForward: y = (x-mean)·rstd·g + b. mean and rstd may be nil.
func layerNormForward[T float](x, g, b []T, n, d int, eps float64, y, mean, rstd []T) {
	if x32, ok := any(x).([]float32); ok {
		layerNormForward32(x32, any(g).([]float32), any(b).([]float32), n, d, eps, any(y).([]float32), any(mean).([]float32), any(rstd).([]float32))
		return
	}
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*d : (r+1)*d]
			var s float64
			for _, v := range xr {
				s += float64(v)
			}
			mu := s / float64(d)
			var vs float64
			for _, v := range xr {
				dv := float64(v) - mu
				vs += dv * dv
			}
			rs := 1 / math.Sqrt(vs/float64(d)+eps)
			if mean != nil {
				mean[r], rstd[r] = T(mu), T(rs)
			}
			yr := y[r*d : (r+1)*d]
			for j, v := range xr {
				yr[j] = T((float64(v)-mu)*rs)*g[j] + b[j]
			}
		}
	})
}

// layerNormBackward writes dx and adds to dg, db (when not nil).
func layerNormBackward[T float](dy, x, g, mean, rstd []T, n, d int, dx, dg, db []T) {
	if x32, ok := any(x).([]float32); ok {
		layerNormBackwardInput32(any(dy).([]float32), x32, any(g).([]float32), any(mean).([]float32), any(rstd).([]float32), n, d, any(dx).([]float32))
	} else {
		layerNormBackwardInput(dy, x, g, mean, rstd, n, d, dx)
	}
	reduceRows(n, d, dg, func(r int, acc []T) {
		xr, dyr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d]
		mu, rs := mean[r], rstd[r]
		for j := range acc {
			acc[j] += dyr[j] * (xr[j] - mu) * rs
		}
	})
	reduceRows(n, d, db, func(r int, acc []T) {
		dyr := dy[r*d : (r+1)*d]
		for j := range acc {
			acc[j] += dyr[j]
		}
	})
}

// layerNormBackwardInput writes dx of layerNormBackward.
func layerNormBackwardInput[T float](dy, x, g, mean, rstd []T, n, d int, dx []T) {
	parallelFor(n, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, dyr, dxr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d], dx[r*d:(r+1)*d]
			mu, rs := float64(mean[r]), float64(rstd[r])
			var s1, s2 float64
			for j := range xr {
				dg := float64(dyr[j]) * float64(g[j])
				s1 += dg
				s2 += dg * (float64(xr[j]) - mu) * rs
			}
			s1 /= float64(d)
			s2 /= float64(d)
			for j := range xr {
				xh := (float64(xr[j]) - mu) * rs
				dxr[j] = T(rs * (float64(dyr[j])*float64(g[j]) - s1 - xh*s2))
			}
		}
	})
}

// ropeTable holds cos and sin of position·inv_freq(i) for i < rot/2,
// times the rope type's attention factor (yarn, longrope).
type ropeTable[T float] struct {
	half, hd int // rot/2 and the head width
	cos, sin []T // [positions × half]
}

// newRopeTable builds the table of the first rot dimensions of heads of
// width hd, for base theta with scaling sc; positions is also the
// pretrained context length yarn's ramp reads; long picks longrope's long
// factors.
func newRopeTable[T float](positions, hd, rot int, theta float64, sc *RopeScaling, long bool) *ropeTable[T] {
	half := rot / 2
	t := &ropeTable[T]{half: half, hd: hd, cos: make([]T, positions*half), sin: make([]T, positions*half)}
	af := sc.attentionFactor()
	for i := 0; i < half; i++ {
		var inv float64
		if sc != nil && sc.Type == "yarn" {
			inv = sc.yarnInv(i, rot, theta, positions)
		} else {
			inv = sc.scaleAt(1/math.Pow(theta, float64(2*i)/float64(rot)), i, rot, long)
		}
		inv = float64(float32(inv)) // transformers keeps inv_freq in float32
		for p := 0; p < positions; p++ {
			a := float64(p) * inv
			t.cos[p*half+i] = T(math.Cos(a) * af)
			t.sin[p*half+i] = T(math.Sin(a) * af)
		}
	}
	return t
}

// apply rotates the heads of rows of x in place (Hugging Face rotate_half
// convention on the first rot dimensions of a head: dimension i pairs with
// i+rot/2; the rest pass). Row r has position pos(r) and heads at offsets
// h·hd for h < heads within a row of stride ld. inverse applies the
// transposed rotation (for the backward pass).
func (t *ropeTable[T]) apply(x []T, rows, ld, heads int, pos func(r int) int, inverse bool) {
	half := t.half
	parallelFor(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			p := pos(r)
			c, s := t.cos[p*half:(p+1)*half], t.sin[p*half:(p+1)*half]
			for h := 0; h < heads; h++ {
				v := x[r*ld+h*t.hd : r*ld+h*t.hd+2*half]
				a, b := v[:half], v[half:]
				for i := 0; i < half; i++ {
					si := s[i]
					if inverse {
						si = -si
					}
					ai, bi := a[i], b[i]
					a[i] = ai*c[i] - bi*si
					b[i] = bi*c[i] + ai*si
				}
			}
		}
	})
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// swigluForward: s = silu(g)·u.
func swigluForward[T float](g, u, s []T) {
	if g32, ok := any(g).([]float32); ok {
		u32, s32 := any(u).([]float32), any(s).([]float32)
		parallelFor(len(g), 4096, func(lo, hi int) { swiglu32(g32[lo:hi], u32[lo:hi], s32[lo:hi]) })
		return
	}
	parallelFor(len(g), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(g[i])
			s[i] = T(x*sigmoid(x)) * u[i]
		}
	})
}

// swigluBackward writes dg and du from ds.
func swigluBackward[T float](ds, g, u, dg, du []T) {
	if g32, ok := any(g).([]float32); ok {
		ds32, u32, dg32, du32 := any(ds).([]float32), any(u).([]float32), any(dg).([]float32), any(du).([]float32)
		parallelFor(len(g), 4096, func(lo, hi int) {
			swigluBack32(ds32[lo:hi], g32[lo:hi], u32[lo:hi], dg32[lo:hi], du32[lo:hi])
		})
		return
	}
	parallelFor(len(g), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(g[i])
			sg := sigmoid(x)
			d := float64(ds[i])
			du[i] = T(d * x * sg)
			dg[i] = T(d * float64(u[i]) * sg * (1 + x*(1-sg)))
		}
	})
}

// swigluForwardDeriv is swigluForward that overwrites g with u·silu'(g) and
// u with silu(g), for a backward pass that needs nothing else of them (the
// MLP's down projection frozen, without LoRA): swigluBackwardDeriv is then
// two multiplies, no exp.
func swigluForwardDeriv[T float](g, u, s []T) {
	if g32, ok := any(g).([]float32); ok {
		u32, s32 := any(u).([]float32), any(s).([]float32)
		parallelFor(len(g), 4096, func(lo, hi int) { swigluDeriv32(g32[lo:hi], u32[lo:hi], s32[lo:hi]) })
		return
	}
	parallelFor(len(g), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x, uv := float64(g[i]), float64(u[i])
			sg := sigmoid(x)
			s[i] = T(x*sg) * u[i]
			g[i] = T(uv * sg * (1 + x*(1-sg)))
			u[i] = T(x * sg)
		}
	})
}

// swigluBackwardDeriv: dg = ds·g, du = ds·u with g and u from
// swigluForwardDeriv.
func swigluBackwardDeriv[T float](ds, g, u, dg, du []T) {
	parallelFor(len(g), 8192, func(lo, hi int) {
		dsr, gr, ur, dgr, dur := ds[lo:hi], g[lo:hi], u[lo:hi], dg[lo:hi], du[lo:hi]
		for i, d := range dsr {
			dur[i] = d * ur[i]
			dgr[i] = d * gr[i]
		}
	})
}

const geluC = 0.7978845608028654 // √(2/π)

// tanh through one exp: about twice as fast as math.Tanh here, with an
// absolute error near 1e-16.
func tanh(x float64) float64 { return 1 - 2/(math.Exp(2*x)+1) }

// geluForwardDeriv is geluForward that overwrites x with GELU'(x), for a
// backward pass that needs nothing else of x (the MLP's output projection
// frozen, without LoRA): geluBackwardDeriv is then one multiply, no exp.
func geluForwardDeriv[T float](x, y []T) {
	if x32, ok := any(x).([]float32); ok {
		y32 := any(y).([]float32)
		parallelFor(len(x), 4096, func(lo, hi int) { geluDeriv32(x32[lo:hi], y32[lo:hi]) })
		return
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			t := tanh(geluC * (v + 0.044715*v*v*v))
			y[i] = T(0.5 * v * (1 + t))
			x[i] = T(0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*0.044715*v*v))
		}
	})
}

// geluBackwardDeriv: dx = dy·d with d = GELU'(x) from geluForwardDeriv.
func geluBackwardDeriv[T float](dy, d, dx []T) {
	parallelFor(len(d), 8192, func(lo, hi int) {
		dyr, dr, dxr := dy[lo:hi], d[lo:hi], dx[lo:hi]
		for i := range dr {
			dxr[i] = dyr[i] * dr[i]
		}
	})
}

// geluForward: GELU with the tanh approximation (GPT-2's gelu_new).
func geluForward[T float](x, y []T) {
	if x32, ok := any(x).([]float32); ok {
		y32 := any(y).([]float32)
		parallelFor(len(x), 4096, func(lo, hi int) { gelu32(x32[lo:hi], y32[lo:hi]) })
		return
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			y[i] = T(0.5 * v * (1 + tanh(geluC*(v+0.044715*v*v*v))))
		}
	})
}

// geluBackward writes dx from dy.
func geluBackward[T float](dy, x, dx []T) {
	if x32, ok := any(x).([]float32); ok {
		dy32, dx32 := any(dy).([]float32), any(dx).([]float32)
		parallelFor(len(x), 4096, func(lo, hi int) { geluBack32(dy32[lo:hi], x32[lo:hi], dx32[lo:hi]) })
		return
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			t := tanh(geluC * (v + 0.044715*v*v*v))
			d := 0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*0.044715*v*v)
			dx[i] = T(float64(dy[i]) * d)
		}
	})
}

// attnShape describes causal multi-head attention over a batch of B
// sequences of S positions; rows are b·S+s. Q has row stride ldq with head h
// at column h·hd; K and V have strides ldk, ldv with kv head j at j·hd; query
// head h reads kv head h/(heads/kvHeads).
type attnShape struct {
	B, S, heads, kvHeads, hd int
	ldq, ldk, ldv, ldo       int
	// scale multiplies q·k (0: hd^-½); softcap, when > 0, caps the scaled
	// scores as softcap·tanh(s/softcap); window, when > 0, lets query i see
	// only keys j with i−j < window.
	scale   float64
	softcap float64
	window  int
}

func (sh attnShape) qkScale() float64 {
	if sh.scale > 0 {
		return sh.scale
	}
	return 1 / math.Sqrt(float64(sh.hd))
}

// firstKey is the first key query i sees.
func (sh attnShape) firstKey(i int) int {
	if sh.window > 0 {
		return max(0, i-sh.window+1)
	}
	return 0
}

// attnTile is the number of query rows attention handles at once: a tile
// of queries [i0, i0+attnTile) only meets keys [0, i0+attnTile), so the
// products skip most of the masked upper triangle (62.5% of S² at S=256
// instead of 100%; smaller tiles would skip more but run smaller products).
const attnTile = 64

// attentionTileScores fills p (m rows of stride S, L = i0+m columns) with
// softmax(cap(Q_h[i0:i0+m]·K_kv[0:L]ᵀ·scale)) under the causal (and
// window) mask. With soft-capping, tc (same layout) receives
// tanh(s/softcap), which the backward pass needs.
func attentionTileScores[T float](sh attnShape, q, k []T, b, h, i0, m int, p, tc []T) {
	S, hd := sh.S, sh.hd
	kv := h / (sh.heads / sh.kvHeads)
	L := i0 + m
	scale := T(sh.qkScale())
	gemm(false, true, m, L, hd, scale, q[(b*S+i0)*sh.ldq+h*hd:], sh.ldq, k[b*S*sh.ldk+kv*hd:], sh.ldk, 0, p, S)
	for i := 0; i < m; i++ {
		row := p[i*S : i*S+L]
		if sh.softcap > 0 {
			softcapRow(row[:i0+i+1], tc[i*S:i*S+i0+i+1], sh.softcap)
		}
		maskedSoftmaxRow(row, sh.firstKey(i0+i), i0+i)
	}
}

// maskedSoftmaxRow turns row[first:last+1] into probabilities and zeroes
// the rest.
func maskedSoftmaxRow[T float](row []T, first, last int) {
	if first == 0 {
		softmaxCausalRow(row, last)
		return
	}
	softmaxCausalRow(row[first:], last-first)
	clear(row[:first])
}

// softcapRow caps row in place as c·tanh(x/c), keeping tanh(x/c) in t.
func softcapRow[T float](row, t []T, c float64) {
	for j, v := range row {
		th := math.Tanh(float64(v) / c)
		t[j] = T(th)
		row[j] = T(c * th)
	}
}

// attentionForward computes O = softmax(QKᵀ/√hd + causal mask)·V per head,
// a tile of query rows at a time, skipping the masked key blocks.
// The probabilities are not kept: the backward pass recomputes them, which
// costs one more Q·Kᵀ product and saves B·heads·S² values per layer.
func attentionForward[T float](sh attnShape, q, k, v, o []T, scratch *bufPool[T]) {
	rep := sh.heads / sh.kvHeads
	S, hd := sh.S, sh.hd
	tile := min(attnTile, S)
	concurrentGEMMs(func() { attentionForwardHeads(sh, q, k, v, o, scratch, rep, S, hd, tile) })
}

func attentionForwardHeads[T float](sh attnShape, q, k, v, o []T, scratch *bufPool[T], rep, S, hd, tile int) {
	parallelFor(sh.B*sh.heads, 1, func(lo, hi int) {
		p := scratch.get(tile * S)
		defer scratch.put(p)
		var tc []T
		if sh.softcap > 0 {
			tc = scratch.get(tile * S)
			defer scratch.put(tc)
		}
		for bh := lo; bh < hi; bh++ {
			b, h := bh/sh.heads, bh%sh.heads
			vo := b*S*sh.ldv + (h/rep)*hd
			for i0 := 0; i0 < S; i0 += tile {
				m := min(tile, S-i0)
				attentionTileScores(sh, q, k, b, h, i0, m, p, tc)
				gemm(false, false, m, hd, i0+m, 1, p, S, v[vo:], sh.ldv, 0, o[(b*S+i0)*sh.ldo+h*hd:], sh.ldo)
			}
		}
	})
}

// attentionBackward writes dq, dk, dv (same layouts as q, k, v) from dO,
// a tile of query rows at a time like attentionForward.
// scratch lends the tile×S buffers of the workers.
func attentionBackward[T float](sh attnShape, q, k, v, dO, dq, dk, dv []T, scratch *bufPool[T]) {
	rep := sh.heads / sh.kvHeads
	S, hd := sh.S, sh.hd
	tile := min(attnTile, S)
	scale := T(sh.qkScale())
	concurrentGEMMs(func() { attentionBackwardHeads(sh, q, k, v, dO, dq, dk, dv, scratch, rep, S, hd, tile, scale) })
}

func attentionBackwardHeads[T float](sh attnShape, q, k, v, dO, dq, dk, dv []T, scratch *bufPool[T], rep, S, hd, tile int, scale T) {
	parallelFor(sh.B*sh.kvHeads, 1, func(lo, hi int) {
		dp := scratch.get(tile * S)
		p := scratch.get(tile * S)
		defer scratch.put(dp)
		defer scratch.put(p)
		var tc []T
		if sh.softcap > 0 {
			tc = scratch.get(tile * S)
			defer scratch.put(tc)
		}
		for bk := lo; bk < hi; bk++ {
			b, kv := bk/sh.kvHeads, bk%sh.kvHeads
			ko := b*S*sh.ldk + kv*hd
			vo := b*S*sh.ldv + kv*hd
			for s := 0; s < S; s++ {
				clear(dk[ko+s*sh.ldk : ko+s*sh.ldk+hd])
				clear(dv[vo+s*sh.ldv : vo+s*sh.ldv+hd])
			}
			for r := 0; r < rep; r++ {
				h := kv*rep + r
				for i0 := 0; i0 < S; i0 += tile {
					m := min(tile, S-i0)
					L := i0 + m
					attentionTileScores(sh, q, k, b, h, i0, m, p, tc)
					qo := (b*S+i0)*sh.ldq + h*hd
					oo := (b*S+i0)*sh.ldo + h*hd
					// dP = dO·Vᵀ; dV += Pᵀ·dO
					gemm(false, true, m, L, hd, 1, dO[oo:], sh.ldo, v[vo:], sh.ldv, 0, dp, S)
					gemm(true, false, L, hd, m, 1, p, S, dO[oo:], sh.ldo, 1, dv[vo:], sh.ldv)
					// dS = P ⊙ (dP − rowsum(dP⊙P)) · scale
					for li := 0; li < m; li++ {
						i := i0 + li
						pr, dr := p[li*S:li*S+L], dp[li*S:li*S+L]
						softmaxBackRow(pr, dr, i, scale)
						if tc != nil { // through the cap: d/ds c·tanh(s/c) = 1 − tanh²
							tr := tc[li*S : li*S+L]
							for j := sh.firstKey(i); j <= i; j++ {
								dr[j] *= 1 - tr[j]*tr[j]
							}
						}
					}
					// dQ = dS·K; dK += dSᵀ·Q
					gemm(false, false, m, hd, L, 1, dp, S, k[ko:], sh.ldk, 0, dq[qo:], sh.ldq)
					gemm(true, false, L, hd, m, 1, dp, S, q[qo:], sh.ldq, 1, dk[ko:], sh.ldk)
				}
			}
		}
	})
}

// softmaxBackRow turns dr (gradient at the probabilities pr of a row
// whose last unmasked key is i) into the gradient at the scores times
// scale; masked entries have pr = 0 and come out 0.
func softmaxBackRow[T float](pr, dr []T, i int, scale T) {
	if p32, ok := any(pr).([]float32); ok {
		softmaxBackRow32(p32, any(dr).([]float32), i, float32(scale))
		return
	}
	var dot float64
	for j := 0; j <= i; j++ {
		dot += float64(pr[j]) * float64(dr[j])
	}
	for j := 0; j <= i; j++ {
		dr[j] = pr[j] * (dr[j] - T(dot)) * scale
	}
	clear(dr[i+1:])
}

// crossEntropyRows turns logits rows (V wide) into softmax − onehot(target),
// scaled by gscale, in place, and returns each row's loss (−log p[target])
// in loss. With grad false the logits are left as they are.
func crossEntropyRows[T float](logits []T, rows, V int, targets []int, gscale float64, grad bool, loss []float64, argmaxOK []bool) {
	if l32, ok := any(logits).([]float32); ok {
		crossEntropyRows32(l32, rows, V, targets, gscale, grad, loss, argmaxOK)
		return
	}
	parallelFor(rows, 4, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := logits[r*V : (r+1)*V]
			mx := row[0]
			am := 0
			for j, v := range row {
				if v > mx {
					mx, am = v, j
				}
			}
			t := targets[r]
			lt := float64(row[t])
			var sum float64
			for j, v := range row {
				e := math.Exp(float64(v - mx))
				sum += e
				if grad {
					row[j] = T(e)
				}
			}
			loss[r] = float64(mx) + math.Log(sum) - lt
			if argmaxOK != nil {
				argmaxOK[r] = am == t
			}
			if grad {
				c := gscale / sum
				for j := range row {
					row[j] = T(float64(row[j]) * c)
				}
				row[t] -= T(gscale)
			}
		}
	})
}

// crossEntropyRows32 is crossEntropyRows on the vectorised kernels; the
// row sums are accumulated in float64 over chunks of vecChunk.
func crossEntropyRows32(logits []float32, rows, V int, targets []int, gscale float64, grad bool, loss []float64, argmaxOK []bool) {
	parallelFor(rows, 4, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := logits[r*V : (r+1)*V]
			am := vek32.ArgMax(row)
			if am < 0 { // NaN in the row: the loss comes out NaN
				am = 0
			}
			mx := row[am]
			t := targets[r]
			lt := float64(row[t])
			var sum float64
			if grad {
				for c := 0; c < V; c += vecChunk {
					sum += float64(expShiftSum32(row[c:min(V, c+vecChunk)], mx))
				}
			} else {
				chunked32(V, func(c0, c1 int, tmp []float32) {
					copy(tmp, row[c0:c1])
					sum += float64(expShiftSum32(tmp, mx))
				})
			}
			loss[r] = float64(mx) + math.Log(sum) - lt
			if argmaxOK != nil {
				argmaxOK[r] = am == t
			}
			if grad {
				vek32.MulNumber_Inplace(row, float32(gscale/sum))
				row[t] -= float32(gscale)
			}
		}
	})
}
