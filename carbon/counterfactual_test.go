package carbon

import "testing"

// TestCounterfactualHandCount checks the FLOP, parameter and memory counts of
// a tiny Llama against a count done by hand.
//
// Model: vocab 10, hidden 4, 1 layer, 2 heads (head dim 2), 1 KV head,
// SwiGLU 6, untied head, sequence 3; LoRA r=2 on q_proj and v_proj.
//
//	linear      in×out   params   LoRA r(in+out)
//	q_proj      4×4      16       2·(4+4) = 16
//	k_proj      4×2       8
//	v_proj      4×2       8       2·(4+2) = 12
//	o_proj      4×4      16
//	gate_proj   4×6      24
//	up_proj     4×6      24
//	down_proj   6×4      24
//	lm_head     4×10     40
//	                    M = 160        R = 28
//
// Attention per token, forward: QKᵀ 3·4 multiply-adds + A·V 3·4 = 24 MACs = 48 FLOPs (A).
// Full per token:  6·160 + 3·48          = 960 + 144       = 1104 FLOPs.
// LoRA per token:  4·160 + 3·48 + 6·28   = 640 + 144 + 168 = 952 FLOPs.
// 30 tokens: full 33120, LoRA 28560 FLOPs; ratio 33120/28560.
// Other params: embed 10·4 = 40, norms 2·4 + 4 = 12 → 52; all params 212.
// AdamW: full 2·4 B·212 = 1696 B; LoRA 2·4 B·28 = 224 B. Gradients 848 B vs 112 B.
func TestCounterfactualHandCount(t *testing.T) {
	shape := LlamaShape(LlamaDims{Vocab: 10, Hidden: 4, Layers: 1, Heads: 2, KVHeads: 1, Intermediate: 6, SeqLen: 3}).WithLoRA(2, "q_proj", "v_proj")
	if shape.MatmulParams() != 160 || shape.AdapterParams() != 28 || shape.Params() != 212 {
		t.Fatalf("M=%d R=%d P=%d, want 160, 28, 212", shape.MatmulParams(), shape.AdapterParams(), shape.Params())
	}
	assertNear(t, "A", shape.AttentionFLOPsPerToken(), 48)
	assertNear(t, "full/token", shape.FullFLOPsPerToken(), 1104)
	assertNear(t, "lora/token", shape.LoRAFLOPsPerToken(), 952)

	// Measured: 30 tokens in 2 s using 1e-6 kWh and 5.6e-8 kg.
	c, err := FullFineTuneCounterfactual(shape, LoRARun{Tokens: 30, TokensPerSec: 15, EnergyKWh: 1e-6, EmissionsKg: 5.6e-8})
	if err != nil {
		t.Fatal(err)
	}
	ratio := 33120.0 / 28560.0
	assertNear(t, "FullFLOPs", c.FullFLOPs, 33120)
	assertNear(t, "LoRAFLOPs", c.LoRAFLOPs, 28560)
	assertNear(t, "AchievedFLOPS", c.AchievedFLOPS, 14280)
	assertNear(t, "LoRASeconds", c.LoRASeconds, 2)
	assertNear(t, "FullSeconds", c.FullSeconds, 2*ratio)
	assertNear(t, "FullEnergyKWh", c.FullEnergyKWh, 1e-6*ratio)
	assertNear(t, "FullEmissionsKg", c.FullEmissionsKg, 5.6e-8*ratio)
	assertNear(t, "EnergyRatio", c.EnergyRatio, ratio)
	if c.FullOptimizerBytes != 1696 || c.LoRAOptimizerBytes != 224 || c.FullGradientBytes != 848 || c.LoRAGradientBytes != 112 {
		t.Errorf("memory: %+v", c)
	}
	assertNear(t, "OptimizerMemoryRatio", c.OptimizerMemoryRatio, 1696.0/224)

	mp, _ := FullFineTuneCounterfactual(shape, LoRARun{Tokens: 30, Seconds: 2, MasterWeights: true, BytesPerParam: 2})
	if mp.FullOptimizerBytes != 12*212 || mp.FullGradientBytes != 2*212 {
		t.Errorf("mixed precision memory: %+v", mp)
	}
	if _, err := FullFineTuneCounterfactual(shape, LoRARun{Tokens: 30}); err == nil {
		t.Error("no time given: want an error")
	}
	if _, err := FullFineTuneCounterfactual(LlamaShape(LlamaDims{Vocab: 10, Hidden: 4, Layers: 1, Heads: 2, SeqLen: 3}), LoRARun{Tokens: 1, Seconds: 1}); err == nil {
		t.Error("no adapter: want an error")
	}
}

// TestShapesMatchPublishedParameterCounts checks the shape builders against
// the parameter counts of two public models.
func TestShapesMatchPublishedParameterCounts(t *testing.T) {
	// GPT-2 small: 124,439,808 parameters (tied head).
	g := GPT2Shape(GPT2Dims{Vocab: 50257, Hidden: 768, Layers: 12, Heads: 12, Positions: 1024, SeqLen: 256})
	if g.Params() != 124439808 {
		t.Errorf("GPT-2 small params = %d, want 124439808", g.Params())
	}
	// TinyLlama-1.1B: vocab 32000, hidden 2048, 22 layers, 32 heads, 4 KV heads, 5632 MLP, untied: 1,100,048,384.
	l := LlamaShape(LlamaDims{Vocab: 32000, Hidden: 2048, Layers: 22, Heads: 32, KVHeads: 4, Intermediate: 5632, SeqLen: 2048})
	if l.Params() != 1100048384 {
		t.Errorf("TinyLlama params = %d, want 1100048384", l.Params())
	}
	// gpt2s (docs/architecture.md, Performance reference): LoRA r=8 on c_attn: 12 · 8 · (768 + 2304) = 294,912 adapter params.
	if got := g.WithLoRA(8, "c_attn").AdapterParams(); got != 294912 {
		t.Errorf("gpt2s adapter params = %d, want 294912", got)
	}
	// all-linear skips the head.
	all := g.WithLoRA(4, "all-linear")
	for _, ln := range all.Linears {
		if (ln.Name == "lm_head") != (ln.Rank == 0) {
			t.Errorf("all-linear: %s rank %d", ln.Name, ln.Rank)
		}
	}
}

// TestCounterfactualDesignWorkload logs the counterfactual of the reference
// llama30m LoRA workload (docs/architecture.md, Performance reference) at its PyTorch reference throughput.
func TestCounterfactualDesignWorkload(t *testing.T) {
	shape := LlamaShape(LlamaDims{Vocab: 8192, Hidden: 512, Layers: 8, Heads: 8, KVHeads: 8, Intermediate: 1408, SeqLen: 256}).
		WithLoRA(16, "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
	c, err := FullFineTuneCounterfactual(shape, LoRARun{Tokens: 8 * 256 * 100, TokensPerSec: 400, EnergyKWh: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("llama30m: params %d, adapter %d; FLOPs/token LoRA %.3g full %.3g (ratio %.3f); optimizer %d vs %d bytes (ratio %.1f)",
		c.Params, c.LoRATrainableParams, c.LoRAFLOPsPerToken, c.FullFLOPsPerToken, c.FLOPRatio, c.LoRAOptimizerBytes, c.FullOptimizerBytes, c.OptimizerMemoryRatio)
	if c.FLOPRatio <= 1 || c.FLOPRatio >= 1.6 || c.OptimizerMemoryRatio < 10 {
		t.Errorf("implausible: %+v", c)
	}
}
