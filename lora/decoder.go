package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The decoder families (llama, mistral, qwen2, qwen3, gemma2, gemma3_text,
// phi3) share one block, written from transformers'
// models/<type>/modeling_<type>.py:
//
//	h = norm₁(x)
//	q, k, v = h·Wq, h·Wk, h·Wv          (phi3: one qkv_proj; qwen2: q,k,v biases)
//	q, k = qnorm(q), knorm(k)            (qwen3, gemma3: RMSNorm over each head)
//	q, k = rope(q), rope(k)              (the first RotaryDim of a head; gemma3's
//	                                      local layers have their own base)
//	a = softmax(cap(q·kᵀ·scale) + mask)·v (mask causal, and windowed on sliding
//	                                      layers; cap only gemma2)
//	x₂ = x + post₁(a·Wo)                 (post₁ only gemma)
//	m = down(act(gate(norm₂(x₂))) ⊙ up(norm₂(x₂)))  (silu; gemma tanh-GELU;
//	                                      phi3: gate and up from one gate_up_proj)
//	out = x₂ + post₂(m)                  (post₂ only gemma)
//
// Gemma's RMSNorm multiplies by 1+w, and its embeddings by √hidden; gemma2
// caps the final logits too.

// buildDecoder names and shapes the tensors of a decoder checkpoint.
func (n *net[T]) buildDecoder(get func(name string, shape ...int) *param[T], mk func(module string, in, out int, bias, conv bool) *linear[T]) {
	cfg := n.cfg
	H, V, I := cfg.Hidden, cfg.VocabSize, cfg.Intermediate
	n.embed = get("model.embed_tokens.weight", V, H)
	qd, kd, hd := cfg.qDim(), cfg.kvDim(), cfg.HeadDim
	qkvBias := cfg.AttentionBias || cfg.QKVBias
	for i := 0; i < cfg.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		b := &block[T]{idx: i}
		b.ln1 = norm[T]{w: get(p+"input_layernorm.weight", H)}
		if cfg.Fused {
			b.qkv = mk(p+"self_attn.qkv_proj", H, qd+2*kd, qkvBias, false)
		} else {
			b.q = mk(p+"self_attn.q_proj", H, qd, qkvBias, false)
			b.k = mk(p+"self_attn.k_proj", H, kd, qkvBias, false)
			b.v = mk(p+"self_attn.v_proj", H, kd, qkvBias, false)
		}
		b.o = mk(p+"self_attn.o_proj", qd, H, cfg.AttentionBias, false)
		if cfg.QKNorm {
			b.qn = get(p+"self_attn.q_norm.weight", hd)
			b.kn = get(p+"self_attn.k_norm.weight", hd)
		}
		if cfg.Gemma {
			b.postAttn = norm[T]{w: get(p+"post_attention_layernorm.weight", H)}
			b.ln2 = norm[T]{w: get(p+"pre_feedforward_layernorm.weight", H)}
			b.postFF = norm[T]{w: get(p+"post_feedforward_layernorm.weight", H)}
		} else {
			b.ln2 = norm[T]{w: get(p+"post_attention_layernorm.weight", H)}
		}
		if cfg.Fused {
			b.gateUp = mk(p+"mlp.gate_up_proj", H, 2*I, cfg.MLPBias, false)
		} else {
			b.gate = mk(p+"mlp.gate_proj", H, I, cfg.MLPBias, false)
			b.up = mk(p+"mlp.up_proj", H, I, cfg.MLPBias, false)
		}
		b.down = mk(p+"mlp.down_proj", I, H, cfg.MLPBias, false)
		n.blocks = append(n.blocks, b)
	}
	n.normF = norm[T]{w: get("model.norm.weight", H)}
	if cfg.TieWordEmbeddings {
		n.head = &linear[T]{module: "lm_head", in: H, out: V, w: n.embed, isHead: true}
	} else {
		n.head = mk("lm_head", H, V, false, false)
		n.head.isHead = true
	}
	n.buildRope()
}

// buildRope makes the RoPE tables of every layer.
func (n *net[T]) buildRope() {
	cfg := n.cfg
	rot := cfg.rotaryDim()
	mk := func(theta float64, sc *RopeScaling, long bool) *ropeTable[T] {
		return newRopeTable[T](cfg.MaxPositions, cfg.HeadDim, rot, theta, sc, long)
	}
	n.rope = mk(cfg.RopeTheta, cfg.RopeScaling, false)
	var local, long *ropeTable[T]
	if cfg.RopeLocalTheta > 0 {
		local = mk(cfg.RopeLocalTheta, nil, false) // Gemma3: rotary_emb_local, default rope
	}
	if cfg.RopeScaling != nil && cfg.RopeScaling.Type == "longrope" {
		long = mk(cfg.RopeTheta, cfg.RopeScaling, true)
	}
	n.ropes, n.long = make([]*ropeTable[T], cfg.Layers), nil
	for i := range n.ropes {
		n.ropes[i] = n.rope
		if local != nil && cfg.sliding(i) {
			n.ropes[i] = local
		}
	}
	if long != nil {
		n.long = make([]*ropeTable[T], cfg.Layers)
		for i := range n.long {
			n.long[i] = long
		}
	}
}

// ropeFor is the table of layer i for a sequence of total length seqLen
// (longrope switches to its long factors beyond the original context, as
// transformers' longrope_frequency_update does).
func (n *net[T]) ropeFor(i, seqLen int) *ropeTable[T] {
	if n.long != nil && seqLen > n.cfg.RopeScaling.OriginalMaxPositions {
		return n.long[i]
	}
	return n.ropes[i]
}

// normW is the multiplier of a norm weight: w, or 1+w for Gemma (whose
// gradient is the same).
func (n *net[T]) normW(p *param[T]) []T {
	if !n.cfg.Gemma {
		return p.w
	}
	out := make([]T, len(p.w))
	for i, v := range p.w {
		out[i] = 1 + v
	}
	return out
}

// embedScale multiplies the embeddings (Gemma: √hidden in the weights'
// dtype), 1 otherwise.
func (c ModelConfig) embedScale() float64 {
	if c.Gemma {
		return float64(float32(math.Sqrt(float64(c.Hidden))))
	}
	return 1
}

// gegluForward: s = gelu_tanh(g)·u (Gemma's MLP).
func gegluForward[T float](g, u, s []T) {
	parallelFor(len(s), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(g[i])
			s[i] = T(0.5 * v * (1 + tanh(geluC*(v+0.044715*v*v*v))) * float64(u[i]))
		}
	})
}

// gegluBackward writes dg and du from ds; dg may be ds and du may be any
// buffer not read here.
func gegluBackward[T float](ds, g, u, dg, du []T) {
	parallelFor(len(ds), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v, d, uv := float64(g[i]), float64(ds[i]), float64(u[i])
			t := tanh(geluC * (v + 0.044715*v*v*v))
			gl := 0.5 * v * (1 + t)
			dgl := 0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*0.044715*v*v)
			du[i] = T(d * gl)
			dg[i] = T(d * uv * dgl)
		}
	})
}

// splitGateUp copies the gate and up halves of phi3's gate_up_proj output
// gu [N × 2I] into g and u [N × I].
func splitGateUp[T float](gu []T, N, I int, g, u []T) {
	parallelFor(N, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(g[r*I:(r+1)*I], gu[r*2*I:r*2*I+I])
			copy(u[r*I:(r+1)*I], gu[r*2*I+I:(r+1)*2*I])
		}
	})
}

// joinGateUp is the inverse of splitGateUp.
func joinGateUp[T float](g, u []T, N, I int, gu []T) {
	parallelFor(N, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(gu[r*2*I:r*2*I+I], g[r*I:(r+1)*I])
			copy(gu[r*2*I+I:(r+1)*2*I], u[r*I:(r+1)*I])
		}
	})
}

// softcapLogits caps rows of logits as c·tanh(x/c), keeping tanh in t.
func softcapLogits[T float](lg, t []T, c float64) {
	parallelFor(len(lg), 8192, func(lo, hi int) { softcapRow(lg[lo:hi], t[lo:hi], c) })
}

// softcapBackward multiplies the gradient at capped values by 1 − t².
func softcapBackward[T float](d, t []T) {
	parallelFor(len(d), 8192, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] *= 1 - t[i]*t[i]
		}
	})
}

// decoderForward is blockForward for the decoder families.
func (n *net[T]) decoderForward(b *block[T], bt batch, x, out []T, h, sb []T, rng *rand.Rand) {
	a := b.a
	cfg := n.cfg
	H, I, S, N := cfg.Hidden, cfg.Intermediate, bt.S, bt.B*bt.S
	ws := &n.ws
	eps := cfg.NormEps
	rmsNormForward(x, n.normW(b.ln1.w), N, H, eps, h, a.rs1)
	sh := n.attnShape(bt, b.idx)
	q, k, v := n.projectQKV(b, h, N, rng)
	pos := func(r int) int { return r % S }
	rp := n.ropeFor(b.idx, S)
	rp.apply(q, N, sh.ldq, cfg.Heads, pos, false)
	rp.apply(k, N, sh.ldk, cfg.KVHeads, pos, false)
	attentionForward(sh, q, k, v, a.att, &ws.scratch)
	if cfg.Gemma {
		a.ao = grow(a.ao, N*H)
		a.rsPA = grow(a.rsPA, N)
		b.o.forward(a.att, N, a.ao, rng)
		rmsNormForward(a.ao, n.normW(b.postAttn.w), N, H, eps, a.x2, a.rsPA)
	} else {
		b.o.forward(a.att, N, a.x2, rng)
	}
	addInto(a.x2, x[:N*H])
	rmsNormForward(a.x2, n.normW(b.ln2.w), N, H, eps, h, a.rs2)
	a.u = grow(a.u, N*I)
	n.gateUpForward(b, h, N, a.g[:N*I], a.u[:N*I], rng)
	mo := out
	if cfg.Gemma {
		a.mo = grow(a.mo, N*H)
		a.rsPF = grow(a.rsPF, N)
		mo = a.mo
	}
	switch {
	case cfg.Gemma:
		gegluForward(a.g[:N*I], a.u[:N*I], sb)
	case b.down.needsInput():
		swigluForward(a.g[:N*I], a.u, sb)
	default: // the backward pass needs only u·silu'(g) and silu(g): a.g and a.u keep those
		swigluForwardDeriv(a.g[:N*I], a.u[:N*I], sb)
	}
	b.down.forward(sb, N, mo, rng)
	if cfg.Gemma {
		rmsNormForward(a.mo, n.normW(b.postFF.w), N, H, eps, out, a.rsPF)
	}
	addInto(out[:N*H], a.x2[:N*H])
}

// projectQKV runs the q, k, v projections (and q/k norms) of h into the
// block's activations and returns q, k, v with the strides of attnShape.
func (n *net[T]) projectQKV(b *block[T], h []T, N int, rng *rand.Rand) (q, k, v []T) {
	a := b.a
	cfg := n.cfg
	qd, kd, hd := cfg.qDim(), cfg.kvDim(), cfg.HeadDim
	if cfg.Fused {
		a.qkvb = grow(a.qkvb, N*(qd+2*kd))
		b.qkv.forward(h, N, a.qkvb, rng)
		return a.qkvb, a.qkvb[qd:], a.qkvb[qd+kd:]
	}
	a.qb = grow(a.qb, N*qd)
	a.kb = grow(a.kb, N*kd)
	a.vb = grow(a.vb, N*kd)
	if cfg.QKNorm {
		a.qr = grow(a.qr, N*qd)
		a.kr = grow(a.kr, N*kd)
		a.rsq = grow(a.rsq, N*cfg.Heads)
		a.rsk = grow(a.rsk, N*cfg.KVHeads)
		b.q.forward(h, N, a.qr, rng)
		b.k.forward(h, N, a.kr, rng)
		rmsNormForward(a.qr, n.normW(b.qn), N*cfg.Heads, hd, cfg.NormEps, a.qb, a.rsq)
		rmsNormForward(a.kr, n.normW(b.kn), N*cfg.KVHeads, hd, cfg.NormEps, a.kb, a.rsk)
	} else {
		b.q.forward(h, N, a.qb, rng)
		b.k.forward(h, N, a.kb, rng)
	}
	b.v.forward(h, N, a.vb, rng)
	return a.qb, a.kb, a.vb
}

// gateUpForward writes the MLP's gate and up projections of h.
func (n *net[T]) gateUpForward(b *block[T], h []T, N int, g, u []T, rng *rand.Rand) {
	if b.gateUp != nil {
		I := n.cfg.Intermediate
		n.ws.gu = grow(n.ws.gu, N*2*I)
		b.gateUp.forward(h, N, n.ws.gu, rng)
		splitGateUp(n.ws.gu, N, I, g, u)
		return
	}
	b.gate.forward(h, N, g, rng)
	b.up.forward(h, N, u, rng)
}

// decoderBackward is blockBackward for the decoder families.
func (n *net[T]) decoderBackward(b *block[T], bt batch, x []T, needDX bool) {
	a := b.a
	cfg := n.cfg
	ws := &n.ws
	H, I, N := cfg.Hidden, cfg.Intermediate, bt.B*bt.S
	qd, kd, hd := cfg.qDim(), cfg.kvDim(), cfg.HeadDim
	eps := cfg.NormEps
	big := ws.arena(n.arenaSize(N))
	sl := N * n.mlpSlot()
	ws.ds = big[: N*I : N*I]
	ws.dg = ws.ds
	ws.sb = big[sl : sl+N*I : sl+N*I]
	ws.du = ws.sb
	h := ws.hn[:N*H]
	if (b.gateUp != nil && b.gateUp.needsInput()) || (b.gate != nil && (b.gate.needsInput() || b.up.needsInput())) {
		rmsNormForward(a.x2, n.normW(b.ln2.w), N, H, eps, h, a.rs2)
		if b.gateUp != nil {
			b.gateUp.x = h
		} else {
			b.gate.x, b.up.x = h, h
		}
	}
	if b.down.needsInput() {
		if cfg.Gemma {
			gegluForward(a.g[:N*I], a.u[:N*I], ws.sb[:N*I])
		} else {
			swigluForward(a.g[:N*I], a.u[:N*I], ws.sb[:N*I])
		}
		b.down.x = ws.sb
	}
	dm := ws.dres
	if cfg.Gemma {
		ws.dpost = grow(ws.dpost, N*H)
		rmsNormBackward(ws.dres, a.mo, n.normW(b.postFF.w), a.rsPF, N, H, ws.dpost, b.postFF.w.g)
		dm = ws.dpost
	}
	b.down.backward(dm, ws.ds, false)
	switch {
	case cfg.Gemma:
		gegluBackward(ws.ds[:N*I], a.g[:N*I], a.u[:N*I], ws.dg, ws.du)
	case b.down.needsInput():
		swigluBackward(ws.ds[:N*I], a.g[:N*I], a.u[:N*I], ws.dg, ws.du)
	default:
		swigluBackwardDeriv(ws.ds[:N*I], a.g[:N*I], a.u[:N*I], ws.dg, ws.du)
	}
	ws.dh = a.g[: N*H : N*H] // g is dead
	if b.gateUp != nil {
		ws.gu = grow(ws.gu, N*2*I)
		joinGateUp(ws.dg, ws.du, N, I, ws.gu)
		b.gateUp.backward(ws.gu, ws.dh, false)
	} else {
		b.gate.backward(ws.dg, ws.dh, false)
		b.up.backward(ws.du, ws.dh, true)
	}
	ws.dtmp = big[: N*H : N*H] // dg and du are dead
	rmsNormBackward(ws.dh, a.x2, n.normW(b.ln2.w), a.rs2, N, H, ws.dtmp, b.ln2.w.g)
	addInto(ws.dres[:N*H], ws.dtmp[:N*H])
	// attention
	attnIn := []*linear[T]{b.qkv}
	if b.qkv == nil {
		attnIn = []*linear[T]{b.q, b.k, b.v}
	}
	needIn := false
	for _, l := range attnIn {
		needIn = needIn || l.needsInput()
	}
	if needIn {
		rmsNormForward(x, n.normW(b.ln1.w), N, H, eps, h, a.rs1)
		for _, l := range attnIn {
			l.x = h
		}
	}
	wa := max(qd, H)
	inputGrad := needDX || b.ln1.w.g != nil
	dao := ws.dres
	if cfg.Gemma {
		ws.dpost = grow(ws.dpost, N*H)
		rmsNormBackward(ws.dres, a.ao, n.normW(b.postAttn.w), a.rsPA, N, H, ws.dpost, b.postAttn.w.g)
		dao = ws.dpost
	}
	ws.datt = big[: N*qd : N*qd]
	b.o.backward(dao, ws.datt, false)
	sh := n.attnShape(bt, b.idx)
	o := N * wa
	var q, k, v, dq, dk, dv []T
	if cfg.Fused {
		w := qd + 2*kd
		ws.dqkv = big[o : o+N*w : o+N*w]
		q, k, v = a.qkvb, a.qkvb[qd:], a.qkvb[qd+kd:]
		dq, dk, dv = ws.dqkv, ws.dqkv[qd:], ws.dqkv[qd+kd:]
	} else {
		ws.dq = big[o : o+N*qd : o+N*qd]
		ws.dk = big[o+N*qd : o+N*(qd+kd) : o+N*(qd+kd)]
		ws.dv = big[o+N*(qd+kd) : o+N*(qd+2*kd) : o+N*(qd+2*kd)]
		q, k, v, dq, dk, dv = a.qb, a.kb, a.vb, ws.dq, ws.dk, ws.dv
	}
	attentionBackward(sh, q, k, v, ws.datt, dq, dk, dv, &ws.scratch)
	S := bt.S
	pos := func(r int) int { return r % S }
	rp := n.ropeFor(b.idx, S)
	rp.apply(dq, N, sh.ldq, cfg.Heads, pos, true)
	rp.apply(dk, N, sh.ldk, cfg.KVHeads, pos, true)
	if cfg.QKNorm {
		ws.dqn = grow(ws.dqn, N*qd)
		ws.dkn = grow(ws.dkn, N*kd)
		rmsNormBackward(dq, a.qr, n.normW(b.qn), a.rsq, N*cfg.Heads, hd, ws.dqn, b.qn.g)
		rmsNormBackward(dk, a.kr, n.normW(b.kn), a.rsk, N*cfg.KVHeads, hd, ws.dkn, b.kn.g)
		dq, dk = ws.dqn, ws.dkn
	}
	ws.dh = big[: N*H : N*H]
	var dx []T
	if inputGrad {
		dx = ws.dh
	}
	if cfg.Fused {
		b.qkv.backward(ws.dqkv, dx, false)
	} else {
		b.q.backward(dq, dx, false)
		b.k.backward(dk, dx, dx != nil)
		b.v.backward(dv, dx, dx != nil)
	}
	if !inputGrad {
		return
	}
	ws.dtmp = big[o : o+N*H : o+N*H] // dq, dk, dv are dead
	rmsNormBackward(ws.dh, x, n.normW(b.ln1.w), a.rs1, N, H, ws.dtmp, b.ln1.w.g)
	addInto(ws.dres[:N*H], ws.dtmp[:N*H])
}
