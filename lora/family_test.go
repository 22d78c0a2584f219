package lora

import (
	"fmt"
	"math"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

// tinyFamilyConfigs are small configs of each decoder family with every
// switch of the family on, sized so that the gradient batch (7 positions)
// meets the sliding window and the soft caps bend.
func tinyFamilyConfigs() []ModelConfig {
	base := func(mt string) ModelConfig {
		c := tinyLlamaConfig()
		c.ModelType = mt
		return c
	}
	mistral := base("mistral")
	mistral.SlidingWindow = 3
	qwen2 := base("qwen2")
	qwen2.QKVBias, qwen2.SlidingWindow, qwen2.LayerSliding, qwen2.TieWordEmbeddings = true, 4, []bool{false, true}, true
	qwen3 := base("qwen3")
	qwen3.QKNorm, qwen3.HeadDim, qwen3.AttentionBias = true, 6, true
	gemma2 := base("gemma2")
	gemma2.Gemma, gemma2.TieWordEmbeddings = true, true
	gemma2.AttnSoftcap, gemma2.FinalSoftcap, gemma2.QueryPreAttnScalar = 2, 3, 5
	gemma2.SlidingWindow, gemma2.LayerSliding = 3, []bool{true, false}
	gemma3 := base("gemma3_text")
	gemma3.Gemma, gemma3.TieWordEmbeddings, gemma3.QKNorm = true, true, true
	gemma3.QueryPreAttnScalar, gemma3.RopeTheta, gemma3.RopeLocalTheta = 6, 1e6, 1e4
	gemma3.SlidingWindow, gemma3.LayerSliding = 2, []bool{true, false}
	gemma3.RopeScaling = &RopeScaling{Type: "linear", Factor: 8}
	phi3 := base("phi3")
	phi3.Fused, phi3.RotaryDim, phi3.SlidingWindow = true, 2, 5
	phi3.OriginalMaxPositions = 4
	phi3.RopeScaling = &RopeScaling{Type: "longrope", Factor: 8, OriginalMaxPositions: 4, ShortFactor: []float64{1.5}, LongFactor: []float64{3}}
	yarn := base("llama")
	yarn.RopeScaling = &RopeScaling{Type: "yarn", Factor: 4, BetaFast: 32, BetaSlow: 1}
	yarn.AttentionBias, yarn.MLPBias, yarn.HeadDim = true, true, 6
	return []ModelConfig{mistral, qwen2, qwen3, gemma2, gemma3, phi3, yarn}
}

func bigWeights(m *Model) {
	for _, p := range m.net.params {
		for j := range p.w {
			p.w[j] *= 20
			if p.w[j] == 0 {
				p.w[j] = float32(0.1 * math.Sin(float64(j)+1))
			}
		}
	}
}

// TestGradientsFamiliesFull checks every weight of each family by finite
// differences: q/k norms, soft-capping of scores and logits, sliding
// windows, GeGLU, Gemma's 1+w norms, post-norms and embedding scale,
// partial rotary and longrope, fused qkv_proj and gate_up_proj, biases.
func TestGradientsFamiliesFull(t *testing.T) {
	for i, cfg := range tinyFamilyConfigs() {
		t.Run(fmt.Sprintf("%s-%d", cfg.ModelType, i), func(t *testing.T) {
			m := newTiny(t, cfg, 4)
			bigWeights(m)
			n := netAs[float64](t, m)
			checkGrads(t, n, fullTrainables(n), gradBatch(cfg.VocabSize), 6)
		})
	}
}

// TestGradientsFamiliesLoRA checks LoRA on every linear layer of each
// family, with and without gradient checkpointing, and with only the
// attention adapted (the MLP's backward pass then recomputes nothing).
func TestGradientsFamiliesLoRA(t *testing.T) {
	for i, cfg := range tinyFamilyConfigs() {
		for _, mode := range []string{"all", "ckpt", "partial"} {
			t.Run(fmt.Sprintf("%s-%d-%s", cfg.ModelType, i, mode), func(t *testing.T) {
				m := newTiny(t, cfg, 4)
				n := netAs[float64](t, m)
				pc := peft.DefaultConfig()
				pc.TargetModules = peft.TargetModules{AllLinear: true}
				if mode == "partial" {
					pc.TargetModules = peft.TargetModules{List: []string{"q_proj", "qkv_proj", "o_proj"}}
				}
				n.checkpointing = mode == "ckpt"
				pc.R, pc.LoraAlpha, pc.InitLoraWeights = 3, 5, "false"
				tr, err := initLoRA(n, pc, 9, 0)
				if err != nil {
					t.Fatal(err)
				}
				checkGrads(t, n, tr, gradBatch(cfg.VocabSize), 4)
			})
		}
	}
}
