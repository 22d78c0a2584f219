package lora

import (
	"strings"

	"github.com/loraflow/loraflow/lora/peft"
)

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
	lowest, ln1Trains := -1, true
	if !fullFineTune {
		lowest, ln1Trains = m.lowestTrainable(pc)
	}
	for _, l := range m.net.linears() {
		mac := float64(l.in) * float64(l.out)
		// the input gradient (the head's too: it feeds the blocks), except
		// for the attention input of the lowest trainable block, whose input
		// gradient nothing needs (blockBackward's needDX)
		noDX := !ln1Trains && layerOfParam(l.module, c) == lowest && isAttentionInput(l.module)
		f += 2 * mac * T // forward
		if !noDX {
			f += 2 * mac * T
		}
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
			if noDX {
				f -= 2 * r * float64(l.in) * T // no du·A
			}
		}
	}
	// attention per layer: forward QKᵀ and PV; backward recomputes QKᵀ and
	// computes dP, dV, dQ, dK — each 2·hd FLOPs per unmasked pair, S(S+1)/2
	// pairs per head and sequence.
	perHead := float64(seqLen) * float64(seqLen+1) * float64(c.HeadDim)
	f += float64(c.Layers*batch*c.Heads) * perHead * (2 + 5)
	return f
}

// lowestTrainable mirrors the trainables of initLoRA for pc: the lowest
// block with a trainable parameter (−1: the embeddings train; Layers: only
// the final norm or head), and whether that block's attention norm trains.
func (m *Model) lowestTrainable(pc peft.Config) (lowest int, ln1Trains bool) {
	c := m.cfg
	lowest = c.Layers
	trains := func(name string) bool {
		return trainsBesideLoRA(pc, name, func(mod string) bool {
			l := m.net.findLinear(mod)
			return l != nil && pc.Targets(l.module, l.isHead)
		})
	}
	for _, l := range m.net.linears() {
		if pc.Targets(l.module, l.isHead) {
			lowest = min(lowest, layerOfParam(l.module, c))
		}
	}
	for _, p := range m.net.params {
		if trains(p.name) {
			lowest = min(lowest, layerOfParam(p.name, c))
		}
	}
	if lowest < 0 || lowest >= c.Layers {
		return lowest, true
	}
	ln1 := m.net.blocks[lowest].ln1
	ln1Trains = trains(ln1.w.name) || (ln1.b != nil && trains(ln1.b.name))
	return lowest, ln1Trains
}

// isAttentionInput reports whether a module reads a block's normalised
// input for attention: q_proj, k_proj, v_proj or GPT-2's c_attn.
func isAttentionInput(module string) bool {
	for _, s := range []string{".q_proj", ".k_proj", ".v_proj", ".c_attn", ".qkv_proj"} {
		if strings.HasSuffix(module, s) {
			return true
		}
	}
	return false
}
