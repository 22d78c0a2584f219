package lora

import (
	"math/rand/v2"
)

// workspace holds the buffers of a batch forward/backward pass; they are
// grown on demand and reused across steps.
type workspace[T float] struct {
	xs                 [][]T // residual stream before each block and after the last
	hf, rsF, muF       []T
	dres, dtmp, dh     []T
	dq, dk, dv, dqkv   []T
	datt, dg, du, ds   []T
	rows, tg           []int
	hc, dhc, logits    []T
	dhf                []T
	chunkLoss, rowLoss []float64
	chunkOK            []bool
	hn, sb             []T // normalised block input and MLP activation, shared by the layers
	gu                 []T // phi3: the gate_up_proj output, then its gradient
	dpost              []T // gemma: the gradient before a post-norm
	dqn, dkn           []T // qwen3, gemma3: the gradients of q and k before their norms
	capT               []T // final soft-capping: tanh of the head's logits chunk
	// big is one allocation for the step's short-lived products, which are
	// never live at once (peak RSS): a block's MLP activation sb in the
	// forward pass, the head's logits chunk in headLoss, and in a block's
	// backward pass first the MLP's ds, dg and sb (du), then the attention
	// gradients datt and dq, dk, dv (dqkv). See arena.
	big     []T
	loraTmp []T // the LoRA branches' dropout scratch (loraBranch.tmp)
	loraDu  []T // and their du (loraBranch.duTmp)
	shared  *acts[T]
	sharedU []*[]T // with checkpointing, the LoRA branches' u per place in a block (loraBranch.uTmp)
	scratch bufPool[T]
	rowOK   []bool
}

// batch is a padded batch of B sequences of S positions, row r = b·S+s.
type batch struct {
	B, S    int
	tokens  []int // [B·S], padding is token 0
	targets []int // [B·S], −1 where no loss is taken
	lengths []int // [B] real lengths
}

// makeBatch pads seqs (truncated to maxLen when > 0) into a batch.
func makeBatch(seqs []Sequence, maxLen int) batch {
	S := 1
	for _, s := range seqs {
		n := len(s.Tokens)
		if maxLen > 0 && n > maxLen {
			n = maxLen
		}
		S = max(S, n)
	}
	bt := batch{B: len(seqs), S: S, tokens: make([]int, len(seqs)*S), targets: make([]int, len(seqs)*S), lengths: make([]int, len(seqs))}
	for b, s := range seqs {
		n := min(len(s.Tokens), S)
		bt.lengths[b] = n
		start := max(s.PromptLen, 1)
		for i := 0; i < S; i++ {
			r := b*S + i
			bt.targets[r] = -1
			if i < n {
				bt.tokens[r] = s.Tokens[i]
			}
			if i+1 < n && i+1 >= start && (s.Loss == nil || s.Loss[i+1]) {
				bt.targets[r] = s.Tokens[i+1]
			}
		}
	}
	return bt
}

// countTargets returns the number of positions that contribute to the loss.
func (bt batch) countTargets() int {
	c := 0
	for _, t := range bt.targets {
		if t >= 0 {
			c++
		}
	}
	return c
}

// stepResult sums the loss over a batch's targets.
type stepResult struct {
	lossSum float64
	count   int
	correct int // targets predicted by argmax
}

// dropoutSeed seeds the dropout masks of one micro-batch; each block (and
// the head) draws from its own stream, so a replayed block sees the same masks.
type dropoutSeed struct{ hi, lo uint64 }

func (d *dropoutSeed) rng(layer int) *rand.Rand {
	if d == nil {
		return nil
	}
	return rand.New(rand.NewPCG(d.hi, d.lo^uint64(layer+1)<<40))
}

// run does the forward pass of bt, and with train the backward pass, adding
// the gradients of lossSum·gscale to the trainable parameters. drop seeds
// dropout (nil: none). lowest is the lowest block index that has trainable
// parameters (−1: the embeddings are trainable).
func (n *net[T]) run(bt batch, train bool, gscale float64, drop *dropoutSeed, lowest int) stepResult {
	cfg := n.cfg
	H, S, N := cfg.Hidden, bt.S, bt.B*bt.S
	ws := &n.ws
	if len(ws.xs) != cfg.Layers+1 {
		ws.xs = make([][]T, cfg.Layers+1)
	}
	for i := range ws.xs {
		ws.xs[i] = grow(ws.xs[i], N*H)
	}
	// embeddings
	x0 := ws.xs[0]
	es := T(cfg.embedScale())
	parallelFor(N, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x0[r*H : (r+1)*H]
			n.embed.row(bt.tokens[r], xr)
			if es != 1 {
				for j := range xr {
					xr[j] *= es
				}
			}
			if n.pos != nil {
				p := n.pos.w[(r%S)*H : (r%S+1)*H]
				xr := x0[r*H : (r+1)*H]
				for j := range xr {
					xr[j] += p[j]
				}
			}
		}
	})
	// With checkpointing (training only) all blocks share one set of activations.
	ckpt := train && n.checkpointing
	if ckpt && ws.shared == nil {
		ws.shared = &acts[T]{}
	}
	for _, b := range n.blocks {
		switch {
		case ckpt && b.a != ws.shared:
			b.a = ws.shared
			ws.shareLoRAU(b, true)
		case !ckpt && (b.a == nil || b.a == ws.shared):
			b.a = &acts[T]{}
			ws.shareLoRAU(b, false)
		}
	}
	for _, b := range n.blocks {
		n.blockForward(b, bt, ws.xs[b.idx], ws.xs[b.idx+1], drop.rng(b.idx))
	}
	xl := ws.xs[cfg.Layers]
	ws.hf = grow(ws.hf, N*H)
	ws.rsF = grow(ws.rsF, N)
	if n.normF.b != nil {
		ws.muF = grow(ws.muF, N)
		layerNormForward(xl, n.normF.w.w, n.normF.b.w, N, H, cfg.NormEps, ws.hf, ws.muF, ws.rsF)
	} else {
		rmsNormForward(xl, n.normW(n.normF.w), N, H, cfg.NormEps, ws.hf, ws.rsF)
	}
	res := n.headLoss(bt, train, gscale, drop.rng(cfg.Layers))
	if !train {
		return res
	}
	// backward
	ws.dres = grow(ws.dres, N*H)
	if n.normF.b != nil {
		layerNormBackward(ws.dhf, xl, n.normF.w.w, ws.muF, ws.rsF, N, H, ws.dres, n.normF.w.g, n.normF.b.g)
	} else {
		rmsNormBackward(ws.dhf, xl, n.normW(n.normF.w), ws.rsF, N, H, ws.dres, n.normF.w.g)
	}
	for i := len(n.blocks) - 1; i >= 0 && i >= lowest; i-- {
		if ckpt && i < len(n.blocks)-1 {
			// replay the forward pass (it rewrites xs[i+1] with the same values)
			n.blockForward(n.blocks[i], bt, ws.xs[i], ws.xs[i+1], drop.rng(i))
		}
		n.blockBackward(n.blocks[i], bt, ws.xs[i], i > lowest)
	}
	if lowest < 0 {
		if g := n.embed.g; g != nil {
			for r := 0; r < N; r++ {
				gr, dr := g[bt.tokens[r]*H:(bt.tokens[r]+1)*H], ws.dres[r*H:(r+1)*H]
				for j := range gr {
					gr[j] += dr[j] * es
				}
			}
		}
		if n.pos != nil && n.pos.g != nil {
			for r := 0; r < N; r++ {
				gr, dr := n.pos.g[(r%S)*H:(r%S+1)*H], ws.dres[r*H:(r+1)*H]
				for j := range gr {
					gr[j] += dr[j]
				}
			}
		}
	}
	return res
}

// headLoss applies the output head to the rows that have targets, in chunks,
// and computes the cross-entropy; with train it also back-propagates each
// chunk at once into ws.dhf (the logits are never all in memory).
func (n *net[T]) headLoss(bt batch, train bool, gscale float64, rng *rand.Rand) stepResult {
	ws := &n.ws
	H, V := n.cfg.Hidden, n.cfg.VocabSize
	N := bt.B * bt.S
	ws.rows = ws.rows[:0]
	ws.tg = ws.tg[:0]
	for r, t := range bt.targets {
		if t >= 0 {
			ws.rows = append(ws.rows, r)
			ws.tg = append(ws.tg, t)
		}
	}
	M := len(ws.rows)
	ws.rowLoss = ws.rowLoss[:0]
	ws.rowOK = ws.rowOK[:0]
	for range N {
		ws.rowLoss = append(ws.rowLoss, 0)
		ws.rowOK = append(ws.rowOK, false)
	}
	ws.hc = grow(ws.hc, M*H)
	for i, r := range ws.rows {
		copy(ws.hc[i*H:(i+1)*H], ws.hf[r*H:(r+1)*H])
	}
	if train { // hf is dead once copied: its gradient takes its place
		ws.dhf = ws.hf[:N*H]
		zero(ws.dhf)
	}
	if M == 0 {
		return stepResult{}
	}
	// C rows of logits at a time, at most 2²⁵ values (128 MiB): every chunk
	// streams the whole head weight through the cache twice (forward and
	// input gradient), so a large vocabulary wants few, tall chunks
	// (gpt2s: 12 chunks of 83 rows ran 5–10% slower than 2 of 512).
	C := min(max(16, (1<<25)/V), 512, M)
	need := max(C*V, n.arenaSize(N))
	ws.logits = ws.arena(need)[:C*V]
	if train {
		ws.dhc = grow(ws.dhc, C*H)
	}
	if cap(ws.chunkLoss) < C {
		ws.chunkLoss = make([]float64, C)
		ws.chunkOK = make([]bool, C)
	}
	var res stepResult
	res.count = M
	for c0 := 0; c0 < M; c0 += C {
		c := min(C, M-c0)
		lg := ws.logits[:c*V]
		n.head.forward(ws.hc[c0*H:(c0+c)*H], c, lg, rng)
		capT := n.capLogits(lg)
		crossEntropyRows(lg, c, V, ws.tg[c0:c0+c], gscale, train, ws.chunkLoss[:c], ws.chunkOK[:c])
		for i := 0; i < c; i++ {
			res.lossSum += ws.chunkLoss[i]
			ws.rowLoss[ws.rows[c0+i]] = ws.chunkLoss[i]
			ws.rowOK[ws.rows[c0+i]] = ws.chunkOK[i]
			if ws.chunkOK[i] {
				res.correct++
			}
		}
		if train {
			if capT != nil {
				softcapBackward(lg, capT)
			}
			n.head.backward(lg, ws.dhc[:c*H], false)
			for i := 0; i < c; i++ {
				r := ws.rows[c0+i]
				copy(ws.dhf[r*H:(r+1)*H], ws.dhc[i*H:(i+1)*H])
			}
		}
	}
	return res
}

// capLogits applies the final soft-capping to a chunk of logits and
// returns tanh of them (nil without capping).
func (n *net[T]) capLogits(lg []T) []T {
	c := n.cfg.FinalSoftcap
	if c <= 0 {
		return nil
	}
	n.ws.capT = grow(n.ws.capT, len(lg))
	t := n.ws.capT[:len(lg)]
	softcapLogits(lg, t, c)
	return t
}

// attnShape is the attention of layer of a batch.
func (n *net[T]) attnShape(bt batch, layer int) attnShape {
	cfg := n.cfg
	sh := attnShape{B: bt.B, S: bt.S, heads: cfg.Heads, kvHeads: cfg.KVHeads, hd: cfg.HeadDim, ldo: cfg.qDim(),
		scale: cfg.attnScale(), softcap: cfg.AttnSoftcap}
	if cfg.sliding(layer) {
		sh.window = cfg.SlidingWindow
	}
	switch {
	case cfg.isGPT2():
		sh.ldq, sh.ldk, sh.ldv = 3*cfg.Hidden, 3*cfg.Hidden, 3*cfg.Hidden
	case cfg.Fused:
		w := cfg.qDim() + 2*cfg.kvDim()
		sh.ldq, sh.ldk, sh.ldv = w, w, w
	default:
		sh.ldq, sh.ldk, sh.ldv = cfg.qDim(), cfg.kvDim(), cfg.kvDim()
	}
	return sh
}

func (n *net[T]) blockForward(b *block[T], bt batch, x, out []T, rng *rand.Rand) {
	a := b.a
	cfg := n.cfg
	H, I, S, N := cfg.Hidden, cfg.Intermediate, bt.S, bt.B*bt.S
	qd, kd := cfg.qDim(), cfg.kvDim()
	ws := &n.ws
	ws.hn = grow(ws.hn, N*H)
	sl := N * n.mlpSlot()
	ws.sb = ws.arena(n.arenaSize(N))[sl : sl+N*I : sl+N*I]
	h := ws.hn // the normalised input; recomputed in the backward pass
	a.rs1 = grow(a.rs1, N)
	a.x2 = grow(a.x2, N*H)
	a.rs2 = grow(a.rs2, N)
	a.att = grow(a.att, N*qd)
	a.g = grow(a.g, N*n.mlpSlot()) // dh takes its place in the backward pass
	if !cfg.isGPT2() {
		n.decoderForward(b, bt, x, out, h, ws.sb, rng)
		return
	}
	sh := n.attnShape(bt, b.idx)
	if cfg.isGPT2() {
		a.mu1 = grow(a.mu1, N)
		a.mu2 = grow(a.mu2, N)
		a.qkvb = grow(a.qkvb, N*3*H)
		layerNormForward(x, b.ln1.w.w, b.ln1.b.w, N, H, cfg.NormEps, h, a.mu1, a.rs1)
		b.qkv.forward(h, N, a.qkvb, rng)
		attentionForward(sh, a.qkvb, a.qkvb[H:], a.qkvb[2*H:], a.att, &ws.scratch)
	} else {
		a.qb = grow(a.qb, N*qd)
		a.kb = grow(a.kb, N*kd)
		a.vb = grow(a.vb, N*kd)
		rmsNormForward(x, b.ln1.w.w, N, H, cfg.NormEps, h, a.rs1)
		b.q.forward(h, N, a.qb, rng)
		b.k.forward(h, N, a.kb, rng)
		b.v.forward(h, N, a.vb, rng)
		pos := func(r int) int { return r % S }
		n.rope.apply(a.qb, N, qd, cfg.Heads, pos, false)
		n.rope.apply(a.kb, N, kd, cfg.KVHeads, pos, false)
		attentionForward(sh, a.qb, a.kb, a.vb, a.att, &ws.scratch)
	}
	b.o.forward(a.att, N, a.x2, rng)
	addInto(a.x2, x[:N*H])
	if cfg.isGPT2() {
		layerNormForward(a.x2, b.ln2.w.w, b.ln2.b.w, N, H, cfg.NormEps, h, a.mu2, a.rs2)
		b.fc.forward(h, N, a.g, rng)
		if b.mlpProj.needsInput() {
			geluForward(a.g[:N*I], ws.sb)
		} else { // the backward pass needs only GELU'(g): a.g keeps that instead of g
			geluForwardDeriv(a.g[:N*I], ws.sb)
		}
		b.mlpProj.forward(ws.sb, N, out, rng)
	} else {
		rmsNormForward(a.x2, b.ln2.w.w, N, H, cfg.NormEps, h, a.rs2)
		a.u = grow(a.u, N*I)
		b.gate.forward(h, N, a.g, rng)
		b.up.forward(h, N, a.u, rng)
		if b.down.needsInput() {
			swigluForward(a.g[:N*I], a.u, ws.sb)
		} else { // the backward pass needs only u·silu'(g) and silu(g): a.g and a.u keep those
			swigluForwardDeriv(a.g[:N*I], a.u[:N*I], ws.sb)
		}
		b.down.forward(ws.sb, N, out, rng)
	}
	addInto(out[:N*H], a.x2[:N*H])
}

// shareLoRAU points the u of the block's LoRA branches at the buffers that
// the branches at the same places in every block share (with checkpointing),
// or back at their own (share false).
func (ws *workspace[T]) shareLoRAU(b *block[T], share bool) {
	for i, l := range b.linears() {
		lb := l.lora
		if lb == nil {
			continue
		}
		lb.uTmp = nil
		if !share {
			continue
		}
		for len(ws.sharedU) <= i {
			ws.sharedU = append(ws.sharedU, new([]T))
		}
		lb.uTmp = ws.sharedU[i]
	}
}

// arena returns ws.big, grown to at least size elements.
func (ws *workspace[T]) arena(size int) []T {
	if cap(ws.big) < size {
		ws.big = make([]T, size)
	}
	return ws.big[:cap(ws.big)]
}

// arenaSize is how much of the arena a block of N rows needs: in the MLP's
// backward pass two slots of mlpSlot per row (ds, which becomes dg, and the
// activation sb, which becomes du); in the attention's, datt (then dh), dq,
// dk, dv (Llama) or dqkv (GPT-2) (dq or dqkv then dtmp).
func (n *net[T]) arenaSize(N int) int {
	cfg := n.cfg
	H, qd, kd := cfg.Hidden, cfg.qDim(), cfg.kvDim()
	return N * max(2*n.mlpSlot(), max(qd, H)+max(qd+2*kd, H), max(qd, H)+3*H)
}

// mlpSlot is the per-row size of one MLP slot of the arena.
func (n *net[T]) mlpSlot() int { return max(n.cfg.Intermediate, n.cfg.Hidden) }

func addInto[T float](dst, src []T) {
	parallelFor(len(dst), 8192, func(lo, hi int) {
		d, s := dst[lo:hi], src[lo:hi]
		for i := range d {
			d[i] += s[i]
		}
	})
}

// blockBackward turns ws.dres (gradient at the block's output) into the
// gradient at its input x, adding parameter gradients on the way. Without
// needDX (nothing below the block trains) the attention's input gradient is
// left out where its norm has no trainable weight: ws.dres then holds the
// gradient at the attention's output only.
func (n *net[T]) blockBackward(b *block[T], bt batch, x []T, needDX bool) {
	a := b.a
	cfg := n.cfg
	ws := &n.ws
	H, I, N := cfg.Hidden, cfg.Intermediate, bt.B*bt.S
	qd, kd := cfg.qDim(), cfg.kvDim()
	if !cfg.isGPT2() {
		n.decoderBackward(b, bt, x, needDX)
		return
	}
	big := ws.arena(n.arenaSize(N))
	sl := N * n.mlpSlot()
	// Two slots of the arena: slot 0 takes the gradient ds at the MLP
	// activation, then dg in place; slot 1 the activation sb (as in
	// blockForward), then du. dh takes the place of a.g once the
	// activation's backward pass has read it.
	ws.ds = big[: N*I : N*I]
	ws.dg = ws.ds
	ws.sb = big[sl : sl+N*I : sl+N*I] // headLoss may have moved the arena
	ws.du = ws.sb
	// Recompute what the forward pass did not keep: the normalised input of
	// the MLP and its activation (only where a trainable weight or LoRA
	// branch reads them).
	h := ws.hn[:N*H]
	if cfg.isGPT2() {
		if b.fc.needsInput() {
			layerNormForward(a.x2, b.ln2.w.w, b.ln2.b.w, N, H, cfg.NormEps, h, a.mu2, a.rs2)
			b.fc.x = h
		}
		if b.mlpProj.needsInput() {
			geluForward(a.g[:N*I], ws.sb[:N*I])
			b.mlpProj.x = ws.sb
		}
	} else {
		if b.gate.needsInput() || b.up.needsInput() {
			rmsNormForward(a.x2, b.ln2.w.w, N, H, cfg.NormEps, h, a.rs2)
			b.gate.x, b.up.x = h, h
		}
		if b.down.needsInput() {
			swigluForward(a.g[:N*I], a.u[:N*I], ws.sb[:N*I])
			b.down.x = ws.sb
		}
	}
	// MLP; once the output projection's backward has run its input sb is
	// dead, and the activation's backward (its exp recomputed) writes dg
	// over ds and du over sb.
	if cfg.isGPT2() {
		b.mlpProj.backward(ws.dres, ws.ds, false)
		if b.mlpProj.needsInput() {
			geluBackward(ws.ds[:N*I], a.g[:N*I], ws.dg)
		} else {
			geluBackwardDeriv(ws.ds[:N*I], a.g[:N*I], ws.dg)
		}
		ws.dh = a.g[: N*H : N*H] // g is dead
		b.fc.backward(ws.dg, ws.dh, false)
		ws.dtmp = big[: N*H : N*H] // dg is dead
		layerNormBackward(ws.dh, a.x2, b.ln2.w.w, a.mu2, a.rs2, N, H, ws.dtmp, b.ln2.w.g, b.ln2.b.g)
	} else {
		b.down.backward(ws.dres, ws.ds, false)
		if b.down.needsInput() {
			swigluBackward(ws.ds[:N*I], a.g[:N*I], a.u[:N*I], ws.dg, ws.du)
		} else {
			swigluBackwardDeriv(ws.ds[:N*I], a.g[:N*I], a.u[:N*I], ws.dg, ws.du)
		}
		ws.dh = a.g[: N*H : N*H] // g is dead
		b.gate.backward(ws.dg, ws.dh, false)
		b.up.backward(ws.du, ws.dh, true)
		ws.dtmp = big[: N*H : N*H] // dg and du are dead
		rmsNormBackward(ws.dh, a.x2, b.ln2.w.w, a.rs2, N, H, ws.dtmp, b.ln2.w.g)
	}
	addInto(ws.dres[:N*H], ws.dtmp[:N*H])
	// attention; recompute its normalised input
	if cfg.isGPT2() {
		if b.qkv.needsInput() {
			layerNormForward(x, b.ln1.w.w, b.ln1.b.w, N, H, cfg.NormEps, h, a.mu1, a.rs1)
			b.qkv.x = h
		}
	} else if b.q.needsInput() || b.k.needsInput() || b.v.needsInput() {
		rmsNormForward(x, b.ln1.w.w, N, H, cfg.NormEps, h, a.rs1)
		b.q.x, b.k.x, b.v.x = h, h, h
	}
	// the MLP's buffers are dead: the attention gradients take the arena;
	// dh takes datt's place once the attention's backward has read it, dtmp
	// that of dq (dqkv) once q's (qkv's) backward has.
	wa := max(qd, H)
	inputGrad := needDX || b.ln1.w.g != nil || (b.ln1.b != nil && b.ln1.b.g != nil)
	ws.datt = big[: N*qd : N*qd]
	b.o.backward(ws.dres, ws.datt, false)
	sh := n.attnShape(bt, b.idx)
	ws.dh = big[: N*H : N*H]
	o := N * wa
	if cfg.isGPT2() {
		ws.dqkv = big[o : o+N*3*H : o+N*3*H]
		attentionBackward(sh, a.qkvb, a.qkvb[H:], a.qkvb[2*H:], ws.datt, ws.dqkv, ws.dqkv[H:], ws.dqkv[2*H:], &ws.scratch)
		if !inputGrad {
			b.qkv.backward(ws.dqkv, nil, false)
			return
		}
		b.qkv.backward(ws.dqkv, ws.dh, false)
		ws.dtmp = big[o : o+N*H : o+N*H]
		layerNormBackward(ws.dh, x, b.ln1.w.w, a.mu1, a.rs1, N, H, ws.dtmp, b.ln1.w.g, b.ln1.b.g)
	} else {
		ws.dq = big[o : o+N*qd : o+N*qd]
		o += N * qd
		ws.dk = big[o : o+N*kd : o+N*kd]
		o += N * kd
		ws.dv = big[o : o+N*kd : o+N*kd]
		attentionBackward(sh, a.qb, a.kb, a.vb, ws.datt, ws.dq, ws.dk, ws.dv, &ws.scratch)
		S := bt.S
		pos := func(r int) int { return r % S }
		n.rope.apply(ws.dq, N, qd, cfg.Heads, pos, true)
		n.rope.apply(ws.dk, N, kd, cfg.KVHeads, pos, true)
		if !inputGrad {
			b.q.backward(ws.dq, nil, false)
			b.k.backward(ws.dk, nil, false)
			b.v.backward(ws.dv, nil, false)
			return
		}
		b.q.backward(ws.dq, ws.dh, false)
		b.k.backward(ws.dk, ws.dh, true)
		b.v.backward(ws.dv, ws.dh, true)
		ws.dtmp = ws.dq[: N*H : N*H]
		rmsNormBackward(ws.dh, x, b.ln1.w.w, a.rs1, N, H, ws.dtmp, b.ln1.w.g)
	}
	addInto(ws.dres[:N*H], ws.dtmp[:N*H])
}
