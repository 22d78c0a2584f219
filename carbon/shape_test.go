package carbon

// A hand-written description of model shapes, for the counterfactual's own
// tests only: it gives FLOPCounts that can be checked by hand (see
// TestCounterfactualHandCount). The pipeline's counts come from the
// engine's FLOP model (lora's Model.StepFLOPs, pipeline.TrainingFLOPs).

import (
	"strconv"
	"strings"
)

// Linear is one weight matrix that multiplies every token (one module
// instance, e.g. layer 3's q_proj).
type Linear struct {
	Name    string // Hugging Face module path, e.g. "model.layers.3.self_attn.q_proj"
	In, Out int
	// Rank is the LoRA rank on this module (0: not adapted).
	Rank int
	// Shared marks a weight tied to a tensor already counted elsewhere (GPT-2's
	// lm_head is wte): its FLOPs count, its parameters do not.
	Shared bool
}

// ModelShape is what the counterfactual needs to know about a model.
type ModelShape struct {
	Linears []Linear
	// OtherParams counts parameters with no per-token matrix multiply:
	// embedding and position tables, norms, biases. Full fine-tuning trains
	// them (gradients and optimizer state), LoRA does not.
	OtherParams int64
	// Layers, AttnDim (query heads × head dim) and SeqLen give the attention
	// score and value FLOPs, which have no weights.
	Layers, AttnDim, SeqLen int
}

// MatmulParams is Σ in·out over Linears, shared ones included (FLOPs).
func (s ModelShape) MatmulParams() int64 {
	var n int64
	for _, l := range s.Linears {
		n += int64(l.In) * int64(l.Out)
	}
	return n
}

// Params is the number of distinct parameters (shared linears excluded).
func (s ModelShape) Params() int64 {
	n := s.OtherParams
	for _, l := range s.Linears {
		if !l.Shared {
			n += int64(l.In) * int64(l.Out)
		}
	}
	return n
}

// AdapterParams is Σ rank·(in+out) over adapted linears: the LoRA A [r,in]
// and B [out,r] matrices.
func (s ModelShape) AdapterParams() int64 {
	var n int64
	for _, l := range s.Linears {
		n += int64(l.Rank) * int64(l.In+l.Out)
	}
	return n
}

// AttentionFLOPsPerToken is the forward cost of QKᵀ and A·V for one token:
// 2 matmuls × 2 FLOPs per multiply-add × SeqLen × AttnDim, per layer
// (dense: the causal mask is not used to skip work).
func (s ModelShape) AttentionFLOPsPerToken() float64 {
	return 4 * float64(s.Layers) * float64(s.SeqLen) * float64(s.AttnDim)
}

// FullFLOPsPerToken is forward + backward of full fine-tuning:
// forward 2·M + A; backward input gradients 2·M + 2·A; weight gradients 2·M;
// in all 6·M + 3·A, with M = MatmulParams and A = AttentionFLOPsPerToken.
func (s ModelShape) FullFLOPsPerToken() float64 {
	return 6*float64(s.MatmulParams()) + 3*s.AttentionFLOPsPerToken()
}

// LoRAFLOPsPerToken is forward + backward of LoRA training: the frozen base
// still runs forward (2·M + A) and propagates input gradients (2·M + 2·A) but
// computes no weight gradients; each adapter adds forward, input-gradient and
// weight-gradient matmuls of 2·r·(in+out) each, so 4·M + 3·A + 6·R with
// R = AdapterParams.
func (s ModelShape) LoRAFLOPsPerToken() float64 {
	return 4*float64(s.MatmulParams()) + 3*s.AttentionFLOPsPerToken() + 6*float64(s.AdapterParams())
}

// WithLoRA returns a copy whose linears whose name equals a target or ends
// with "."+target (PEFT's suffix match) get rank r; "all-linear" adapts every
// linear except the output head (names ending in "lm_head").
func (s ModelShape) WithLoRA(r int, targets ...string) ModelShape {
	out := s
	out.Linears = append([]Linear(nil), s.Linears...)
	for i, l := range out.Linears {
		for _, t := range targets {
			if (t == "all-linear" && !strings.HasSuffix(l.Name, "lm_head")) || l.Name == t || strings.HasSuffix(l.Name, "."+t) {
				out.Linears[i].Rank = r
			}
		}
	}
	return out
}

// LlamaDims are the config.json numbers of a Llama-style model.
type LlamaDims struct {
	Vocab, Hidden, Layers, Heads, KVHeads, Intermediate, SeqLen int
	TiedEmbeddings                                              bool
}

// LlamaShape lays out a Llama model's linears (q,k,v,o,gate,up,down per
// layer and lm_head) with Hugging Face names, and its other parameters
// (embed_tokens, two RMSNorms per layer, the final norm).
func LlamaShape(d LlamaDims) ModelShape {
	if d.KVHeads == 0 {
		d.KVHeads = d.Heads
	}
	hd := d.Hidden / d.Heads
	kv := d.KVHeads * hd
	s := ModelShape{Layers: d.Layers, AttnDim: d.Heads * hd, SeqLen: d.SeqLen}
	for i := 0; i < d.Layers; i++ {
		p := "model.layers." + strconv.Itoa(i) + "."
		s.Linears = append(s.Linears,
			Linear{Name: p + "self_attn.q_proj", In: d.Hidden, Out: d.Heads * hd},
			Linear{Name: p + "self_attn.k_proj", In: d.Hidden, Out: kv},
			Linear{Name: p + "self_attn.v_proj", In: d.Hidden, Out: kv},
			Linear{Name: p + "self_attn.o_proj", In: d.Heads * hd, Out: d.Hidden},
			Linear{Name: p + "mlp.gate_proj", In: d.Hidden, Out: d.Intermediate},
			Linear{Name: p + "mlp.up_proj", In: d.Hidden, Out: d.Intermediate},
			Linear{Name: p + "mlp.down_proj", In: d.Intermediate, Out: d.Hidden},
		)
	}
	s.Linears = append(s.Linears, Linear{Name: "lm_head", In: d.Hidden, Out: d.Vocab, Shared: d.TiedEmbeddings})
	s.OtherParams = int64(d.Vocab)*int64(d.Hidden) + int64(2*d.Layers+1)*int64(d.Hidden)
	return s
}

// GPT2Dims are the config.json numbers of a GPT-2 model.
type GPT2Dims struct {
	Vocab, Hidden, Layers, Heads, Positions, SeqLen int
	Inner                                           int // n_inner; 4·Hidden when 0
}

// GPT2Shape lays out GPT-2 (Conv1D c_attn, c_proj, c_fc, mlp c_proj per
// layer, tied lm_head) with its other parameters: wte, wpe, biases, layer norms.
func GPT2Shape(d GPT2Dims) ModelShape {
	if d.Inner == 0 {
		d.Inner = 4 * d.Hidden
	}
	h := d.Hidden
	s := ModelShape{Layers: d.Layers, AttnDim: h, SeqLen: d.SeqLen}
	for i := 0; i < d.Layers; i++ {
		p := "transformer.h." + strconv.Itoa(i) + "."
		s.Linears = append(s.Linears,
			Linear{Name: p + "attn.c_attn", In: h, Out: 3 * h},
			Linear{Name: p + "attn.c_proj", In: h, Out: h},
			Linear{Name: p + "mlp.c_fc", In: h, Out: d.Inner},
			Linear{Name: p + "mlp.c_proj", In: d.Inner, Out: h},
		)
	}
	s.Linears = append(s.Linears, Linear{Name: "lm_head", In: h, Out: d.Vocab, Shared: true})
	perLayer := int64(3*h+h+d.Inner+h) + 4*int64(h) // biases + ln_1, ln_2 (weight and bias)
	s.OtherParams = int64(d.Vocab)*int64(h) + int64(d.Positions)*int64(h) + int64(d.Layers)*perLayer + 2*int64(h)
	return s
}

// FLOPCounts returns the shape's counts (FullFLOPsPerToken and
// LoRAFLOPsPerToken's approximation).
func (s ModelShape) FLOPCounts() FLOPCounts {
	return FLOPCounts{LoRAPerToken: s.LoRAFLOPsPerToken(), FullPerToken: s.FullFLOPsPerToken(), Params: s.Params(), AdapterParams: s.AdapterParams(),
		Model: "FLOPs per token: full 6M+3A, LoRA 4M+3A+6R (M matmul params, A attention, R adapter params)"}
}

// FullFineTuneCounterfactual estimates what full fine-tuning of shape on the
// run's tokens would have cost, from the LoRA run's measured time and energy.
// shape must have adapter ranks set (see ModelShape.WithLoRA).
func FullFineTuneCounterfactual(shape ModelShape, run LoRARun) (Counterfactual, error) {
	return CounterfactualFromFLOPs(shape.FLOPCounts(), run)
}
