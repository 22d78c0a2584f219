package lora

import "github.com/loraflow/loraflow/lora/peft"

// StepFLOPs counts the floating-point operations of one training step on
// batch sequences of seqLen tokens, every position a target, as this engine
// runs it: matrix products (forward, input gradients, weight gradients of the
// trainable weights, the LoRA branches) and causal attention (the S(S+1)/2
// unmasked query–key pairs, the probabilities recomputed once in the backward
// pass; the masked upper triangle is neither counted nor, mostly, computed).
// Element-wise work is left out. With gradient checkpointing add one forward
// pass of the blocks.
func (m *Model) StepFLOPs(pc peft.Config, batch, seqLen int, fullFineTune bool) float64 {
	c := m.cfg
	T := float64(batch * seqLen)
	var f float64
	for _, l := range m.net.linears() {
		mac := float64(l.in) * float64(l.out)
		f += 2 * mac * T // forward
		f += 2 * mac * T // input gradient (the head's too: it feeds the blocks)
		if fullFineTune {
			f += 2 * mac * T // weight gradient
			continue
		}
		if pc.Targets(l.module, l.isHead) {
			r := float64(pc.Rank(l.module))
			io := float64(l.in + l.out)
			f += 2 * r * io * T // forward: x·Aᵀ, u·Bᵀ
			f += 2 * r * io * T // backward: dy·B, du·A
			f += 2 * r * io * T // dA, dB
		}
	}
	// attention per layer: forward QKᵀ and PV; backward recomputes QKᵀ and
	// computes dP, dV, dQ, dK — each 2·hd FLOPs per unmasked pair, S(S+1)/2
	// pairs per head and sequence.
	perHead := float64(seqLen) * float64(seqLen+1) * float64(c.HeadDim)
	f += float64(c.Layers*batch*c.Heads) * perHead * (2 + 5)
	return f
}
