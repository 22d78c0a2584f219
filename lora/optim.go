package lora

import (
	"math"
	"strings"
)

const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// optimizer is AdamW (decoupled weight decay, as torch.optim.AdamW) over the
// trainable parameters; only they have gradient buffers and moments.
type optimizer[T float] struct {
	tr   []trainable[T]
	m, v [][]T
}

func newOptimizer[T float](tr []trainable[T]) *optimizer[T] {
	o := &optimizer[T]{tr: tr}
	for _, t := range tr {
		t.p.widen() // a trained weight is float32 (frozen.go)
		if t.p.g == nil {
			t.p.g = make([]T, len(t.p.w))
		}
		o.m = append(o.m, make([]T, len(t.p.w)))
		o.v = append(o.v, make([]T, len(t.p.w)))
	}
	return o
}

func (o *optimizer[T]) zeroGrad() {
	for _, t := range o.tr {
		zero(t.p.g)
	}
}

// gradNorm is the global L2 norm of all gradients (summed in a fixed order).
func (o *optimizer[T]) gradNorm() float64 {
	var ss float64
	for _, t := range o.tr {
		for _, g := range t.p.g {
			ss += float64(g) * float64(g)
		}
	}
	return math.Sqrt(ss)
}

// clip scales the gradients so that their global norm is at most maxNorm
// (torch.nn.utils.clip_grad_norm_), returning the norm before clipping.
func (o *optimizer[T]) clip(maxNorm float64) float64 {
	norm := o.gradNorm()
	if maxNorm > 0 && norm > maxNorm {
		c := T(maxNorm / (norm + 1e-6))
		for _, t := range o.tr {
			for i := range t.p.g {
				t.p.g[i] *= c
			}
		}
	}
	return norm
}

// step applies one AdamW update; t is the 1-based step count.
func (o *optimizer[T]) step(t int, lr, weightDecay float64) {
	bc1 := 1 - math.Pow(adamBeta1, float64(t))
	bc2 := 1 - math.Pow(adamBeta2, float64(t))
	for k, tp := range o.tr {
		p, m, v := tp.p, o.m[k], o.v[k]
		plr := lr * tp.lrScale
		decay := 1.0
		if tp.decay {
			decay = 1 - plr*weightDecay
		}
		parallelFor(len(p.w), 1<<14, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g := float64(p.g[i])
				mi := adamBeta1*float64(m[i]) + (1-adamBeta1)*g
				vi := adamBeta2*float64(v[i]) + (1-adamBeta2)*g*g
				m[i], v[i] = T(mi), T(vi)
				w := float64(p.w[i]) * decay
				w -= plr * (mi / bc1) / (math.Sqrt(vi/bc2) + adamEps)
				p.w[i] = T(w)
			}
		})
	}
}

// learningRate follows Hugging Face's schedules with linear warmup:
// constant, linear decay to 0, or cosine decay to 0 at total steps. step is 0-based.
func learningRate(schedule string, base float64, step, warmup, total int) float64 {
	if warmup > 0 && step < warmup {
		return base * float64(step) / float64(warmup)
	}
	switch strings.ToLower(schedule) {
	case "linear":
		return base * math.Max(0, float64(total-step)/math.Max(1, float64(total-warmup)))
	case "cosine":
		progress := float64(step-warmup) / math.Max(1, float64(total-warmup))
		return base * math.Max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	default:
		return base
	}
}
