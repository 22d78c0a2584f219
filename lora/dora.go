package lora

import (
	"math"
	"math/rand/v2"

	"github.com/loraflow/loraflow/lora/peft"
)

// doraState is the DoRA part of a LoRA branch (use_dora), as PEFT's
// DoraLinearLayer: with c = m / ‖W0 + s·B·A‖ per output row, where the norm
// is detached from the gradient as in PEFT (it is treated as a constant in
// the backward pass),
//
//	y = c ⊙ (W0·x + s·B·A·x) + b                          (no dropout)
//	y = W0·x + b + (c − 1) ⊙ W0·xd + c ⊙ s·B·A·xd        (dropout, xd = dropout(x))
//
// the second form being what PEFT computes in training with lora_dropout > 0.
// The magnitude m ([out]) is trainable and saved as
// "<module>.lora_magnitude_vector".
type doraState[T float] struct {
	mag *param[T] // m [out]

	norm  []T  // ‖W0 + s·B·A‖ per output
	c     []T  // m / norm (0 where the norm is 0)
	inv   []T  // 1 / norm (0 where the norm is 0)
	valid bool // norm was computed for frozen weights and can be reused
	hold  bool // keep norm as it is (tests: finite differences of the detached form)

	// saved by forward
	z    []T // W0·xd + s·B·A·xd  [n, out]
	base []T // W0·xd with dropout [n, out]
	dz   []T
	tmp  []T
	rows []T // weightRowNorms' block of W0 + s·B·A
}

// newDoRA attaches a magnitude vector to l's LoRA branch, initialised as
// PEFT does to the row norms of W0 + s·B·A (so that the layer's output is
// unchanged at initialisation).
func newDoRA[T float](l *linear[T], key string) *doraState[T] {
	d := &doraState[T]{mag: newParam[T](key, []int{l.out})}
	l.lora.dora = d
	norms := make([]T, l.out)
	l.weightRowNorms(norms)
	copy(d.mag.w, norms)
	return d
}

// weightRowNorms writes ‖W0 + s·B·A‖₂ of every output row to dst, a block
// of rows at a time (the dense ΔW is never held whole).
func (l *linear[T]) weightRowNorms(dst []T) {
	l.w.widen() // DoRA reads W0 row by row (frozen.go)
	lb := l.lora
	const block = 128
	rowsMax := min(block, l.out)
	var buf []T
	if lb.dora != nil {
		lb.dora.rows = grow(lb.dora.rows, rowsMax*l.in)
		buf = lb.dora.rows
	} else {
		buf = make([]T, rowsMax*l.in)
	}
	for i0 := 0; i0 < l.out; i0 += block {
		i1 := min(i0+block, l.out)
		rows := i1 - i0
		t := buf[:rows*l.in]
		if l.conv1d { // W stored [in, out]: rows of W0 are its columns
			for j := 0; j < l.in; j++ {
				wj := l.w.w[j*l.out : (j+1)*l.out]
				for i := i0; i < i1; i++ {
					t[(i-i0)*l.in+j] = wj[i]
				}
			}
		} else {
			copy(t, l.w.w[i0*l.in:i1*l.in])
		}
		gemm(false, false, rows, l.in, lb.r, lb.scale, lb.b.w[i0*lb.r:], lb.r, lb.a.w, l.in, 1, t, l.in)
		parallelFor(rows, 16, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				var ss float64
				for _, v := range t[i*l.in : (i+1)*l.in] {
					ss += float64(v) * float64(v)
				}
				dst[i0+i] = T(math.Sqrt(ss))
			}
		})
	}
}

// doraPrepare computes the detached norm and c = m/norm for this forward pass.
// The norm is recomputed on every pass while A, B or m are trained, and
// once for frozen (inference) weights.
func (l *linear[T]) doraPrepare() {
	lb := l.lora
	d := lb.dora
	frozen := lb.a.g == nil && lb.b.g == nil && d.mag.g == nil
	if !d.hold && !(frozen && d.valid) {
		d.norm = grow(d.norm, l.out)
		l.weightRowNorms(d.norm)
		d.valid = frozen
	}
	d.c, d.inv = grow(d.c, l.out), grow(d.inv, l.out)
	for j, nv := range d.norm[:l.out] {
		if nv == 0 {
			d.c[j], d.inv[j] = 0, 0
			continue
		}
		d.inv[j] = 1 / nv
		d.c[j] = d.mag.w[j] / nv
	}
}

// doraForward turns y = W0·x (no bias yet) into the DoRA output.
func (l *linear[T]) doraForward(x []T, n int, y []T, rng *rand.Rand) {
	lb := l.lora
	d := lb.dora
	l.doraPrepare()
	xd := lb.dropoutInput(x, n*l.in, rng)
	dropped := len(lb.keep) > 0
	N, out := n*l.out, l.out
	d.z = grow(d.z, N)
	if dropped {
		d.base = grow(d.base, N)
		l.mulW(xd, n, d.base)
		copy(d.z, d.base[:N])
	} else {
		copy(d.z, y[:N])
	}
	lb.growU(n)
	gemm(false, true, n, lb.r, l.in, 1, xd, l.in, lb.a.w, l.in, 0, lb.u, lb.r)
	gemm(false, true, n, out, lb.r, lb.scale, lb.u, lb.r, lb.b.w, lb.r, 1, d.z, out)
	c, z := d.c, d.z
	parallelFor(n, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr, zr := y[r*out:(r+1)*out], z[r*out:(r+1)*out]
			if dropped { // y = W0·x − W0·xd + c⊙z
				br := d.base[r*out : (r+1)*out]
				for j := range yr {
					yr[j] += c[j]*zr[j] - br[j]
				}
			} else {
				for j := range yr {
					yr[j] = c[j] * zr[j]
				}
			}
		}
	})
}

// doraBackward adds the gradients of m, A, B (and W0 when it is trained)
// and writes or adds (beta) the input gradient to dx.
func (l *linear[T]) doraBackward(dy, dx []T, beta T) {
	lb := l.lora
	d := lb.dora
	n, x, out := l.n, l.x, l.out
	dropped := len(lb.keep) > 0
	xd := x
	if dropped {
		xd = lb.droppedInput(x)
	}
	// dm_j = Σ_r dy[r,j]·z[r,j] / norm_j
	reduceRows(n, out, d.mag.g, func(r int, acc []T) {
		dr, zr := dy[r*out:(r+1)*out], d.z[r*out:(r+1)*out]
		for j := range acc {
			acc[j] += dr[j] * zr[j] * d.inv[j]
		}
	})
	// dz = c ⊙ dy; with dropout also tmp = dz − dy, the gradient of W0·xd.
	N := n * out
	d.dz = grow(d.dz, N)
	if dropped {
		d.tmp = grow(d.tmp, N)
	}
	parallelFor(n, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			for j := 0; j < out; j++ {
				i := r*out + j
				d.dz[i] = d.c[j] * dy[i]
				if dropped {
					d.tmp[i] = d.dz[i] - dy[i]
				}
			}
		}
	})
	if l.w.g != nil {
		if dropped {
			l.weightGrad(dy, x, n)
			l.weightGrad(d.tmp[:N], xd, n)
		} else {
			l.weightGrad(d.dz, x, n)
		}
	}
	lb.branchGrads(d.dz, xd, n, l.in, out)
	if dx == nil {
		return
	}
	if !dropped {
		l.inputGrad(d.dz, n, beta, dx)
		gemm(false, false, n, l.in, lb.r, 1, lb.du, lb.r, lb.a.w, l.in, 1, dx, l.in)
		return
	}
	l.inputGrad(dy, n, beta, dx)
	dxd := lb.scratch(n * l.in) // xd is dead now
	l.inputGrad(d.tmp[:N], n, 0, dxd)
	gemm(false, false, n, l.in, lb.r, 1, lb.du, lb.r, lb.a.w, l.in, 1, dxd, l.in)
	lb.addMasked(dxd, dx)
}

// applyMagnitudes attaches the DoRA magnitude vectors of a saved adapter to
// the LoRA branches applyAdapter made; with use_dora every adapted module
// must carry one, and without it none may.
func applyMagnitudes[T float](n *net[T], a *peft.Adapter) error {
	for _, key := range a.Names() {
		mod, kind, _ := peft.ParseKey(key)
		if kind != "lora_magnitude_vector" {
			continue
		}
		if !a.Config.UseDoRA {
			return inputErr(KindAdapterMismatch, "adapter tensor %q is a DoRA magnitude but use_dora is false in adapter_config.json", key)
		}
		l := n.findLinear(mod)
		if l == nil || l.lora == nil {
			return inputErr(KindAdapterMismatch, "adapter tensor %q: module %q has no lora_A/lora_B in the adapter or is not a linear layer of this %s model", key, mod, n.cfg.ModelType)
		}
		if shape := a.Shapes[key]; len(shape) != 1 || shape[0] != l.out {
			return inputErr(KindAdapterMismatch, "adapter tensor %q has shape %v; a DoRA magnitude of %s [%d→%d] is [%d]", key, shape, mod, l.in, l.out, l.out)
		}
		l.lora.dora = &doraState[T]{mag: &param[T]{name: key, shape: []int{l.out}, w: fromFloat32[T](a.Tensors[key])}}
	}
	if !a.Config.UseDoRA {
		return nil
	}
	for _, l := range n.linears() {
		if l.lora != nil && l.lora.dora == nil {
			return inputErr(KindAdapterMismatch, "use_dora is set but the adapter has no %q", peft.KeyMagnitude(l.module))
		}
	}
	return nil
}
