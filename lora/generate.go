package lora

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/loraflow/loraflow/lora/peft"
)

// GenerateOptions controls decoding. Temperature 0 means greedy.
type GenerateOptions struct {
	MaxTokens   int     // new tokens at most; 0: 64
	Temperature float64 // 0: greedy (argmax)
	TopK        int     // 0: no top-k filter
	TopP        float64 // 0 or 1: no nucleus filter
	StopTokens  []int   // generation ends at any of these (not included in the output)
	Seed        int64
}

// kvCache keeps each layer's keys and values of the positions seen so far.
type kvCache[T float] struct {
	k, v [][]T // per layer [positions × kvDim]
	n    int   // positions filled
}

func newKVCache[T float](c ModelConfig, positions int) *kvCache[T] {
	kc := &kvCache[T]{}
	for i := 0; i < c.Layers; i++ {
		kc.k = append(kc.k, make([]T, positions*c.kvDim()))
		kc.v = append(kc.v, make([]T, positions*c.kvDim()))
	}
	return kc
}

// infer runs tokens (at positions cache.n…) through the network, appending
// their keys and values to the cache, and returns the logits of every new
// position (all) or of the last one.
func (n *net[T]) infer(tokens []int, cache *kvCache[T], all bool) []T {
	cfg := n.cfg
	H, I, V, S := cfg.Hidden, cfg.Intermediate, cfg.VocabSize, len(tokens)
	qd, kd, hd := cfg.qDim(), cfg.kvDim(), cfg.HeadDim
	p0 := cache.n
	L := p0 + S
	x := make([]T, S*H)
	es := T(cfg.embedScale())
	for r, t := range tokens {
		n.embed.row(t, x[r*H:(r+1)*H])
		if n.pos != nil {
			for j := 0; j < H; j++ {
				x[r*H+j] += n.pos.w[(p0+r)*H+j]
			}
		}
		if es != 1 {
			for j := 0; j < H; j++ {
				x[r*H+j] *= es
			}
		}
	}
	h := make([]T, S*H)
	q := make([]T, S*qd)
	att := make([]T, S*qd)
	x2 := make([]T, S*H)
	g := make([]T, S*I)
	u := make([]T, S*I)
	sbuf := make([]T, S*I)
	var qkv, gu, post []T
	switch {
	case cfg.isGPT2():
		qkv = make([]T, S*3*H)
	case cfg.Fused:
		qkv = make([]T, S*(qd+2*kd))
		gu = make([]T, S*2*I)
	}
	if cfg.Gemma {
		post = make([]T, S*H)
	}
	kt := make([]T, S*kd)
	vt := make([]T, S*kd)
	pos := func(r int) int { return p0 + r }
	rep := cfg.Heads / cfg.KVHeads
	nw := n.normW
	eps := cfg.NormEps
	for li, b := range n.blocks {
		if cfg.isGPT2() {
			layerNormForward(x, b.ln1.w.w, b.ln1.b.w, S, H, eps, h, nil, nil)
			b.qkv.forward(h, S, qkv, nil)
			for r := 0; r < S; r++ {
				copy(q[r*qd:(r+1)*qd], qkv[r*3*H:r*3*H+H])
				copy(kt[r*kd:(r+1)*kd], qkv[r*3*H+H:r*3*H+2*H])
				copy(vt[r*kd:(r+1)*kd], qkv[r*3*H+2*H:(r+1)*3*H])
			}
		} else {
			rmsNormForward(x, nw(b.ln1.w), S, H, eps, h, nil)
			switch {
			case cfg.Fused:
				w := qd + 2*kd
				b.qkv.forward(h, S, qkv, nil)
				for r := 0; r < S; r++ {
					copy(q[r*qd:(r+1)*qd], qkv[r*w:r*w+qd])
					copy(kt[r*kd:(r+1)*kd], qkv[r*w+qd:r*w+qd+kd])
					copy(vt[r*kd:(r+1)*kd], qkv[r*w+qd+kd:(r+1)*w])
				}
			default:
				b.q.forward(h, S, q, nil)
				b.k.forward(h, S, kt, nil)
				b.v.forward(h, S, vt, nil)
			}
			if cfg.QKNorm {
				qr, kr := append([]T(nil), q...), append([]T(nil), kt...)
				rmsNormForward(qr, nw(b.qn), S*cfg.Heads, hd, eps, q, nil)
				rmsNormForward(kr, nw(b.kn), S*cfg.KVHeads, hd, eps, kt, nil)
			}
			rp := n.ropeFor(li, L)
			rp.apply(q, S, qd, cfg.Heads, pos, false)
			rp.apply(kt, S, kd, cfg.KVHeads, pos, false)
		}
		K, Vc := cache.k[li], cache.v[li]
		copy(K[p0*kd:L*kd], kt)
		copy(Vc[p0*kd:L*kd], vt)
		sh := attnShape{hd: hd, scale: cfg.attnScale(), softcap: cfg.AttnSoftcap}
		if cfg.sliding(li) {
			sh.window = cfg.SlidingWindow
		}
		scale := T(sh.qkScale())
		parallelFor(cfg.Heads, 1, func(lo, hi int) {
			sc := make([]T, S*L)
			var tc []T
			if sh.softcap > 0 {
				tc = make([]T, L)
			}
			for hh := lo; hh < hi; hh++ {
				kv := hh / rep
				gemm(false, true, S, L, hd, scale, q[hh*hd:], qd, K[kv*hd:], kd, 0, sc, L)
				for i := 0; i < S; i++ {
					row := sc[i*L : (i+1)*L]
					if tc != nil {
						softcapRow(row[:p0+i+1], tc[:p0+i+1], sh.softcap)
					}
					maskedSoftmaxRow(row, sh.firstKey(p0+i), p0+i)
				}
				gemm(false, false, S, hd, L, 1, sc, L, Vc[kv*hd:], kd, 0, att[hh*hd:], qd)
			}
		})
		if cfg.Gemma {
			b.o.forward(att, S, post, nil)
			rmsNormForward(post, nw(b.postAttn.w), S, H, eps, x2, nil)
		} else {
			b.o.forward(att, S, x2, nil)
		}
		addInto(x2, x)
		switch {
		case cfg.isGPT2():
			layerNormForward(x2, b.ln2.w.w, b.ln2.b.w, S, H, eps, h, nil, nil)
			b.fc.forward(h, S, g, nil)
			geluForward(g, sbuf)
			b.mlpProj.forward(sbuf, S, x, nil)
		default:
			rmsNormForward(x2, nw(b.ln2.w), S, H, eps, h, nil)
			if cfg.Fused {
				b.gateUp.forward(h, S, gu, nil)
				splitGateUp(gu, S, I, g, u)
			} else {
				b.gate.forward(h, S, g, nil)
				b.up.forward(h, S, u, nil)
			}
			if cfg.Gemma {
				gegluForward(g, u, sbuf)
				b.down.forward(sbuf, S, post, nil)
				rmsNormForward(post, nw(b.postFF.w), S, H, eps, x, nil)
			} else {
				swigluForward(g, u, sbuf)
				b.down.forward(sbuf, S, x, nil)
			}
		}
		addInto(x, x2)
	}
	cache.n = L
	rows, from := S, 0
	if !all {
		rows, from = 1, S-1
	}
	hf := make([]T, rows*H)
	if n.normF.b != nil {
		layerNormForward(x[from*H:], n.normF.w.w, n.normF.b.w, rows, H, eps, hf, nil, nil)
	} else {
		rmsNormForward(x[from*H:], nw(n.normF.w), rows, H, eps, hf, nil)
	}
	logits := make([]T, rows*V)
	n.head.forward(hf, rows, logits, nil)
	if c := cfg.FinalSoftcap; c > 0 {
		softcapLogits(logits, make([]T, len(logits)), c)
	}
	return logits
}

func (m *Model) checkTokens(tokens []int) error {
	if len(tokens) == 0 {
		return inputErr(KindBadData, "no tokens")
	}
	if len(tokens) > m.cfg.MaxPositions {
		return inputErr(KindBadData, "%d tokens exceed the model's %d positions", len(tokens), m.cfg.MaxPositions)
	}
	for i, t := range tokens {
		if t < 0 || t >= m.cfg.VocabSize {
			return inputErr(KindBadData, "token %d at position %d is outside the vocabulary [0,%d)", t, i, m.cfg.VocabSize)
		}
	}
	return nil
}

// Logits returns the logits of every position of tokens, row-major
// [len(tokens) × vocab], for the model with adapter a (nil: base model).
func Logits(ctx context.Context, m *Model, a *peft.Adapter, tokens []int) ([]float32, error) {
	if err := m.checkTokens(tokens); err != nil {
		return nil, err
	}
	n, err := m.instance(a)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return n.infer(tokens, newKVCache[float32](m.cfg, len(tokens)), true), nil
}

// Generate continues prompt with up to opts.MaxTokens tokens, using a KV
// cache; it returns the new tokens only.
func Generate(ctx context.Context, m *Model, a *peft.Adapter, prompt []int, opts GenerateOptions) ([]int, error) {
	if err := m.checkTokens(prompt); err != nil {
		return nil, err
	}
	n, err := m.instance(a)
	if err != nil {
		return nil, err
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = 64
	}
	maxLen := min(m.cfg.MaxPositions, len(prompt)+opts.MaxTokens)
	cache := newKVCache[float32](m.cfg, maxLen)
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e7))
	stop := map[int]bool{}
	for _, t := range opts.StopTokens {
		stop[t] = true
	}
	logits := n.infer(prompt, cache, false)
	var out []int
	for len(out) < opts.MaxTokens && cache.n < maxLen+1 {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("lora: generation stopped: %w", err)
		}
		t := sampleToken(logits, opts, rng)
		if stop[t] {
			break
		}
		out = append(out, t)
		if cache.n >= maxLen {
			break
		}
		logits = n.infer([]int{t}, cache, false)
	}
	return out, nil
}

// sampleToken picks the next token: argmax at temperature 0, otherwise a
// sample from the tempered softmax after top-k and top-p filtering.
func sampleToken(logits []float32, o GenerateOptions, rng *rand.Rand) int {
	if o.Temperature <= 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if o.TopK > 0 && o.TopK < len(idx) {
		idx = idx[:o.TopK]
	}
	probs := make([]float64, len(idx))
	mx := float64(logits[idx[0]])
	var sum float64
	for i, j := range idx {
		probs[i] = math.Exp((float64(logits[j]) - mx) / o.Temperature)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	if o.TopP > 0 && o.TopP < 1 {
		var c float64
		for i, p := range probs {
			c += p
			if c >= o.TopP {
				idx, probs = idx[:i+1], probs[:i+1]
				break
			}
		}
		var s float64
		for _, p := range probs {
			s += p
		}
		for i := range probs {
			probs[i] /= s
		}
	}
	r := rng.Float64()
	for i, p := range probs {
		r -= p
		if r < 0 {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}
