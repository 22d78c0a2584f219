package lora

import (
	"math/rand/v2"
)

// linear is a linear layer y = x·Wᵀ + b (W stored [out, in]) or, for GPT-2's
// Conv1D, y = x·W + b (W stored [in, out]), with an optional LoRA branch
// scale·((dropout(x)·Aᵀ)·Bᵀ), which may be a DoRA branch (see dora.go).
type linear[T float] struct {
	module  string // e.g. "model.layers.0.self_attn.q_proj"
	in, out int
	w       *param[T]
	conv1d  bool
	b       *param[T] // nil without bias
	lora    *loraBranch[T]
	isHead  bool

	// saved by forward for backward
	x []T
	n int
}

type loraBranch[T float] struct {
	r       int
	scale   T
	dropout float64
	a, b    *param[T] // a [r, in], b [out, r]
	dora    *doraState[T]
	// a0, b0 are the data-driven initial factors (PiSSA, OLoRA) that the
	// saved adapter is converted against; nil otherwise.
	a0, b0 []float32
	// tmp is scratch for the dropped-out input xd (built in forward, rebuilt
	// from x and the mask in backward) and then its gradient dxd; the
	// branches of one net share it (nil: the branch makes its own), so
	// dropout keeps no per-branch copy of the input.
	tmp *[]T
	// duTmp backs du, which lives only inside backward; shared the same way.
	duTmp *[]T
	// uTmp, when not nil, backs u: with gradient checkpointing the branches
	// at one place of every block share it (a block's forward pass is
	// replayed right before its backward pass).
	uTmp *[]T
	// saved by forward
	keep []uint8 // dropout mask
	u    []T     // xd·Aᵀ  [n, r]
	du   []T
}

// growU makes lb.u n·r long, in uTmp when the branch has one.
func (lb *loraBranch[T]) growU(n int) {
	if lb.uTmp == nil {
		lb.u = grow(lb.u, n*lb.r)
		return
	}
	*lb.uTmp = grow(*lb.uTmp, n*lb.r)
	lb.u = (*lb.uTmp)[:n*lb.r]
}

// scratch returns size elements of the branch's scratch buffer.
func (lb *loraBranch[T]) scratch(size int) []T {
	if lb.tmp == nil {
		lb.tmp = new([]T)
	}
	*lb.tmp = grow(*lb.tmp, size)
	return (*lb.tmp)[:size]
}

// droppedInput rebuilds in scratch the dropped-out input that forward
// computed from the same x and mask (the same arithmetic, so the same values).
func (lb *loraBranch[T]) droppedInput(x []T) []T {
	xd := lb.scratch(len(lb.keep))
	inv := T(1 / (1 - lb.dropout))
	parallelFor(len(xd), 8192, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if lb.keep[i] != 0 {
				xd[i] = x[i] * inv
			} else {
				xd[i] = 0
			}
		}
	})
	return xd
}

// needsInput reports whether backward reads the saved input: only for the
// gradient of a trainable weight or of a LoRA branch.
func (l *linear[T]) needsInput() bool { return l.w.g != nil || l.lora != nil }

// mulW writes y[:n·out] = x·W (as the layer applies it; no bias).
func (l *linear[T]) mulW(x []T, n int, y []T) {
	if l.w.lp != nil {
		lowMul(l.w, !l.conv1d, n, x, l.in, 0, y, l.out)
		return
	}
	if l.conv1d {
		gemm(false, false, n, l.out, l.in, 1, x, l.in, l.w.w, l.out, 0, y, l.out)
	} else {
		gemm(false, true, n, l.out, l.in, 1, x, l.in, l.w.w, l.in, 0, y, l.out)
	}
}

// inputGrad writes (beta 0) or adds (beta 1) g·W to dx: the input gradient
// of the base product for an output gradient g [n, out].
func (l *linear[T]) inputGrad(g []T, n int, beta T, dx []T) {
	if l.w.lp != nil {
		lowMul(l.w, l.conv1d, n, g, l.out, beta, dx, l.in)
		return
	}
	if l.conv1d {
		gemm(false, true, n, l.in, l.out, 1, g, l.out, l.w.w, l.out, beta, dx, l.in)
	} else {
		gemm(false, false, n, l.in, l.out, 1, g, l.out, l.w.w, l.in, beta, dx, l.in)
	}
}

// weightGrad adds the gradient of the base weight for output gradient g and
// input x to l.w.g.
func (l *linear[T]) weightGrad(g, x []T, n int) {
	if l.conv1d { // dW[in,out] += xᵀ·g
		gemm(true, false, l.in, l.out, n, 1, x, l.in, g, l.out, 1, l.w.g, l.out)
	} else { // dW[out,in] += gᵀ·x
		gemm(true, false, l.out, l.in, n, 1, g, l.out, x, l.in, 1, l.w.g, l.in)
	}
}

// addBias adds the bias to every row of y[:n·out].
func (l *linear[T]) addBias(y []T, n int) {
	if l.b == nil {
		return
	}
	bw := l.b.w
	parallelFor(n, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr := y[r*l.out : (r+1)*l.out]
			for j := range yr {
				yr[j] += bw[j]
			}
		}
	})
}

// dropoutInput returns the branch input: x itself, or with dropout in
// training (rng not nil) a dropped-out, rescaled copy whose mask is kept
// for the backward pass.
func (lb *loraBranch[T]) dropoutInput(x []T, size int, rng *rand.Rand) []T {
	if lb.dropout > 0 && rng != nil {
		xd := lb.scratch(size)
		if cap(lb.keep) < size {
			lb.keep = make([]uint8, size)
		}
		lb.keep = lb.keep[:size]
		keep := lb.keep
		inv := T(1 / (1 - lb.dropout))
		// One draw from rng seeds the mask; each fixed chunk of it has its
		// own PCG stream, so the chunks fill in parallel and the mask does
		// not depend on the number of threads. An element is dropped when
		// its 32-bit uniform is below dropout·2³².
		seed := rng.Uint64()
		thresh := uint64(lb.dropout * (1 << 32))
		parallelFor((size+dropoutChunk-1)/dropoutChunk, 1, func(lo, hi int) {
			var src rand.PCG
			for c := lo; c < hi; c++ {
				src.Seed(seed, uint64(c))
				var bits uint64
				for i := c * dropoutChunk; i < min(size, (c+1)*dropoutChunk); i++ {
					if i&1 == 0 {
						bits = src.Uint64()
					} else {
						bits >>= 32
					}
					if bits&0xffffffff >= thresh {
						keep[i] = 1
						xd[i] = x[i] * inv
					} else {
						keep[i] = 0
						xd[i] = 0
					}
				}
			}
		})
		return xd
	}
	lb.keep = lb.keep[:0]
	return x
}

// dropoutChunk is the number of mask elements per PCG stream (even).
const dropoutChunk = 1 << 14

// forward computes y[:n·out] from x[:n·in]. rng drives dropout; nil means
// evaluation (no dropout).
func (l *linear[T]) forward(x []T, n int, y []T, rng *rand.Rand) {
	l.x, l.n = x, n
	l.mulW(x, n, y)
	lb := l.lora
	if lb != nil && lb.dora != nil {
		l.doraForward(x, n, y, rng)
		l.addBias(y, n)
		return
	}
	l.addBias(y, n)
	if lb == nil {
		return
	}
	xd := lb.dropoutInput(x, n*l.in, rng)
	lb.growU(n)
	gemm(false, true, n, lb.r, l.in, 1, xd, l.in, lb.a.w, l.in, 0, lb.u, lb.r)
	gemm(false, true, n, l.out, lb.r, lb.scale, lb.u, lb.r, lb.b.w, lb.r, 1, y, l.out)
}

// backward takes dy[:n·out]; it adds weight gradients to the trainable
// parameters and, when dx is not nil, writes (accumulate=false) or adds
// (accumulate=true) the input gradient.
func (l *linear[T]) backward(dy, dx []T, accumulate bool) {
	n, x := l.n, l.x
	if l.b != nil && l.b.g != nil {
		reduceRows(n, l.out, l.b.g, func(r int, acc []T) {
			dr := dy[r*l.out : (r+1)*l.out]
			for j := range acc {
				acc[j] += dr[j]
			}
		})
	}
	beta := T(0)
	if accumulate {
		beta = 1
	}
	lb := l.lora
	if lb != nil && lb.dora != nil {
		l.doraBackward(dy, dx, beta)
		return
	}
	if l.w.g != nil {
		l.weightGrad(dy, x, n)
	}
	if dx != nil {
		l.inputGrad(dy, n, beta, dx)
	}
	if lb == nil {
		return
	}
	xd := x
	if len(lb.keep) > 0 {
		xd = lb.droppedInput(x)
	}
	lb.branchGrads(dy, xd, n, l.in, l.out)
	if dx == nil {
		return
	}
	if len(lb.keep) == 0 {
		gemm(false, false, n, l.in, lb.r, 1, lb.du, lb.r, lb.a.w, l.in, 1, dx, l.in)
		return
	}
	dxd := lb.scratch(n * l.in) // xd is dead now
	gemm(false, false, n, l.in, lb.r, 1, lb.du, lb.r, lb.a.w, l.in, 0, dxd, l.in)
	lb.addMasked(dxd, dx)
}

// branchGrads computes du = scale·g·B [n, r] and adds the gradients of A and
// B for the branch output gradient g [n, out] and branch input xd.
func (lb *loraBranch[T]) branchGrads(g, xd []T, n, in, out int) {
	if lb.duTmp == nil {
		lb.duTmp = new([]T)
	}
	*lb.duTmp = grow(*lb.duTmp, n*lb.r)
	lb.du = (*lb.duTmp)[:n*lb.r]
	gemm(false, false, n, lb.r, out, lb.scale, g, out, lb.b.w, lb.r, 0, lb.du, lb.r)
	if lb.b.g != nil { // dB += scale·gᵀ·u
		gemm(true, false, out, lb.r, n, lb.scale, g, out, lb.u, lb.r, 1, lb.b.g, lb.r)
	}
	if lb.a.g != nil { // dA += duᵀ·xd
		gemm(true, false, lb.r, in, n, 1, lb.du, lb.r, xd, in, 1, lb.a.g, in)
	}
}

// addMasked adds the gradient dxd, taken with respect to the
// dropped-out input, to dx through the dropout mask.
func (lb *loraBranch[T]) addMasked(dxd, dx []T) {
	inv := T(1 / (1 - lb.dropout))
	parallelFor(len(lb.keep), 8192, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if lb.keep[i] != 0 {
				dx[i] += dxd[i] * inv
			}
		}
	})
}
