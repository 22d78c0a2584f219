package lora

import (
	"fmt"
)

type norm[T float] struct {
	w, b *param[T] // b is nil for RMSNorm
}

// block is one transformer layer with the activations its backward pass needs.
type block[T float] struct {
	idx                         int
	ln1, ln2                    norm[T]
	q, k, v, qkv, o             *linear[T] // llama: q,k,v; gpt2: qkv (fused c_attn); phi3: qkv (qkv_proj)
	gate, up, down, fc, mlpProj *linear[T] // llama: gate,up,down; gpt2: fc, mlpProj
	gateUp                      *linear[T] // phi3: gate_up_proj (gate rows first)
	qn, kn                      *param[T]  // qwen3, gemma3: q_norm, k_norm over a head
	postAttn, postFF            norm[T]    // gemma: norms after attention and after the MLP (w nil otherwise)

	a *acts[T] // activations kept for the backward pass
}

// acts are the activations a block keeps for its backward pass. With
// gradient checkpointing all blocks share one acts and each block's forward
// pass is replayed just before its backward pass.
type acts[T float] struct {
	rs1, mu1, qb, kb, vb, qkvb, att, x2, rs2, mu2, g, u []T
	qr, kr, rsq, rsk                                    []T // q, k before their norms and the norms' rstd
	ao, rsPA, mo, rsPF                                  []T // attention and MLP outputs before their post-norms, and rstd
}

// net is the network, generic over the element type.
type net[T float] struct {
	cfg    ModelConfig
	embed  *param[T] // [vocab, hidden]
	pos    *param[T] // gpt2: [positions, hidden]
	blocks []*block[T]
	normF  norm[T]
	head   *linear[T]      // its weight is embed when tied
	rope   *ropeTable[T]   // the global layers' table
	ropes  []*ropeTable[T] // per layer (local layers may differ: gemma3)
	long   []*ropeTable[T] // per layer, longrope's long-factor tables (nil otherwise)
	params []*param[T]     // every base tensor, in checkpoint naming order

	checkpointing bool // gradient checkpointing: keep only block inputs, replay blocks in backward

	ws workspace[T]
}

// weightSource returns a tensor of the checkpoint by name, with its shape checked.
type weightSource func(name string, shape []int) ([]float32, error)

func (c ModelConfig) isGPT2() bool { return c.ModelType == "gpt2" }

func (n *net[T]) linears() []*linear[T] {
	var out []*linear[T]
	for _, b := range n.blocks {
		out = append(out, b.linears()...)
	}
	return append(out, n.head)
}

// linears lists the block's linear layers in a fixed order.
func (b *block[T]) linears() []*linear[T] {
	var out []*linear[T]
	for _, l := range []*linear[T]{b.q, b.k, b.v, b.qkv, b.o, b.gate, b.up, b.gateUp, b.down, b.fc, b.mlpProj} {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// buildNet makes a network of cfg with weights from src.
func buildNet[T float](cfg ModelConfig, src weightSource, low ...lowSource) (*net[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &net[T]{cfg: cfg}
	var firstErr error
	get := func(name string, shape ...int) *param[T] {
		p := &param[T]{name: name, shape: append([]int(nil), shape...)}
		size := 1
		for _, d := range shape {
			size *= d
		}
		var v []float32
		if firstErr == nil && len(low) > 0 { // kept in fewer bits (frozen.go)
			var ok bool
			if p.lp, ok, firstErr = low[0](name, shape); ok {
				n.params = append(n.params, p)
				return p
			}
		}
		if firstErr == nil {
			v, firstErr = src(name, shape)
			if firstErr == nil && len(v) != size {
				firstErr = inputErr(KindCorruptCheckpoint, "tensor %q has %d values, want %d", name, len(v), size)
			}
		}
		if firstErr != nil {
			return p // nothing is allocated once a tensor failed (limits.go)
		}
		if vt, ok := any(v).([]T); ok {
			p.w = vt // float32: keep the loaded slice, no copy
		} else {
			p.w = fromFloat32[T](v)
		}
		n.params = append(n.params, p)
		return p
	}
	H, V, I := cfg.Hidden, cfg.VocabSize, cfg.Intermediate
	mk := func(module string, in, out int, bias, conv bool) *linear[T] {
		l := &linear[T]{module: module, in: in, out: out, conv1d: conv}
		if conv {
			l.w = get(module+".weight", in, out)
		} else {
			l.w = get(module+".weight", out, in)
		}
		if bias {
			l.b = get(module+".bias", out)
		}
		return l
	}
	if cfg.isGPT2() {
		n.embed = get("transformer.wte.weight", V, H)
		n.pos = get("transformer.wpe.weight", cfg.MaxPositions, H)
		for i := 0; i < cfg.Layers; i++ {
			p := fmt.Sprintf("transformer.h.%d.", i)
			b := &block[T]{idx: i}
			b.ln1 = norm[T]{get(p+"ln_1.weight", H), get(p+"ln_1.bias", H)}
			b.qkv = mk(p+"attn.c_attn", H, 3*H, true, true)
			b.o = mk(p+"attn.c_proj", H, H, true, true)
			b.ln2 = norm[T]{get(p+"ln_2.weight", H), get(p+"ln_2.bias", H)}
			b.fc = mk(p+"mlp.c_fc", H, I, true, true)
			b.mlpProj = mk(p+"mlp.c_proj", I, H, true, true)
			n.blocks = append(n.blocks, b)
		}
		n.normF = norm[T]{get("transformer.ln_f.weight", H), get("transformer.ln_f.bias", H)}
		n.head = &linear[T]{module: "lm_head", in: H, out: V, w: n.embed, isHead: true}
	} else {
		n.buildDecoder(get, mk)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return n, nil
}

// clone returns a network that shares the weight values of n but has its own
// parameter records (gradients), layers (LoRA branches) and buffers.
func (n *net[T]) clone() *net[T] {
	pm := map[*param[T]]*param[T]{}
	cp := func(p *param[T]) *param[T] {
		if p == nil {
			return nil
		}
		if q, ok := pm[p]; ok {
			return q
		}
		q := &param[T]{name: p.name, shape: p.shape, w: p.w, lp: p.lp}
		pm[p] = q
		return q
	}
	cl := func(l *linear[T]) *linear[T] {
		if l == nil {
			return nil
		}
		return &linear[T]{module: l.module, in: l.in, out: l.out, w: cp(l.w), conv1d: l.conv1d, b: cp(l.b), isHead: l.isHead}
	}
	c := &net[T]{cfg: n.cfg, embed: cp(n.embed), pos: cp(n.pos), rope: n.rope, ropes: n.ropes, long: n.long}
	for _, b := range n.blocks {
		c.blocks = append(c.blocks, &block[T]{idx: b.idx,
			ln1: norm[T]{cp(b.ln1.w), cp(b.ln1.b)}, ln2: norm[T]{cp(b.ln2.w), cp(b.ln2.b)},
			q: cl(b.q), k: cl(b.k), v: cl(b.v), qkv: cl(b.qkv), o: cl(b.o),
			gate: cl(b.gate), up: cl(b.up), down: cl(b.down), fc: cl(b.fc), mlpProj: cl(b.mlpProj),
			gateUp: cl(b.gateUp), qn: cp(b.qn), kn: cp(b.kn),
			postAttn: norm[T]{w: cp(b.postAttn.w)}, postFF: norm[T]{w: cp(b.postFF.w)}})
	}
	c.normF = norm[T]{cp(n.normF.w), cp(n.normF.b)}
	c.head = cl(n.head)
	for _, p := range n.params {
		c.params = append(c.params, cp(p))
	}
	return c
}

// findLinear returns the linear layer named module.
func (n *net[T]) findLinear(module string) *linear[T] {
	for _, l := range n.linears() {
		if l.module == module {
			return l
		}
	}
	return nil
}

// findParam returns the parameter with the given full name.
func (n *net[T]) findParam(name string) *param[T] {
	for _, p := range n.params {
		if p.name == name {
			return p
		}
	}
	if name == "lm_head.weight" && n.head.w != nil {
		return n.head.w
	}
	return nil
}
