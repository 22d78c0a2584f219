package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

// checkGrads compares the analytic gradients of the mean loss of bt with
// central finite differences, in float64, for up to perParam entries of each
// trainable tensor.
func checkGrads(t *testing.T, n *net[float64], tr []trainable[float64], bt batch, perParam int) {
	t.Helper()
	checkGradsDropout(t, n, tr, bt, perParam, nil)
}

// checkGradsDropout is checkGrads with dropout masks seeded by drop (the same
// masks in the analytic pass and every finite-difference evaluation; nil:
// no dropout).
func checkGradsDropout(t *testing.T, n *net[float64], tr []trainable[float64], bt batch, perParam int, drop *dropoutSeed) {
	t.Helper()
	opt := newOptimizer(tr)
	opt.zeroGrad()
	lowest := n.cfg.Layers
	for _, x := range tr {
		lowest = min(lowest, layerOfParam(x.p.name, n.cfg))
	}
	count := bt.countTargets()
	n.run(bt, true, 1/float64(count), drop, lowest)
	loss := func() float64 {
		r := n.run(bt, false, 0, drop, 0)
		return r.lossSum / float64(r.count)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	const eps = 1e-5
	worst := 0.0
	for _, x := range tr {
		p := x.p
		for k := 0; k < perParam; k++ {
			i := rng.IntN(len(p.w))
			w0 := p.w[i]
			p.w[i] = w0 + eps
			lp := loss()
			p.w[i] = w0 - eps
			lm := loss()
			p.w[i] = w0
			num := (lp - lm) / (2 * eps)
			ana := p.g[i]
			err := math.Abs(num-ana) / math.Max(1e-6, math.Abs(num)+math.Abs(ana))
			if math.Abs(num-ana) > 1e-8 && err > 1e-5 {
				t.Errorf("%s[%d]: analytic %.10g, numeric %.10g (rel err %.2g)", p.name, i, ana, num, err)
			}
			worst = math.Max(worst, err)
		}
	}
	t.Logf("worst relative error %.2g over %d tensors", worst, len(tr))
}

func gradBatch(vocab int) batch {
	return makeBatch([]Sequence{
		{Tokens: []int{1, 5, 9, 13, 17, 21, 25}, PromptLen: 3},
		{Tokens: []int{2, 4, 6, 8}},
		{Tokens: []int{30, 29, 28, 27, 26, 25}, PromptLen: 1},
	}, 0)
}

// TestGradientsWholeModelFull checks every weight of both architectures
// (embeddings, norms, attention with RoPE/GQA and the causal mask, SwiGLU,
// GELU, biases, positions, tied and untied heads, cross-entropy).
func TestGradientsWholeModelFull(t *testing.T) {
	untied := tinyLlamaConfig()
	untied.TieWordEmbeddings = false
	tied := tinyLlamaConfig()
	tied.TieWordEmbeddings = true
	tied.AttentionBias = true
	for i, cfg := range []ModelConfig{untied, tied, tinyGPT2Config()} {
		t.Run(fmt.Sprintf("%s-%d", cfg.ModelType, i), func(t *testing.T) {
			m := newTiny(t, cfg, 4)
			// larger weights make the check sensitive
			for _, p := range m.net.params {
				for j := range p.w {
					p.w[j] *= 20
					if p.w[j] == 0 {
						p.w[j] = float32(0.1 * math.Sin(float64(j)))
					}
				}
			}
			n := netAs[float64](t, m)
			checkGrads(t, n, fullTrainables(n), gradBatch(cfg.VocabSize), 6)
		})
	}
}

// TestGradientsWholeModelLoRA checks the LoRA branches (with B ≠ 0),
// rslora scale, a trainable bias and a modules_to_save head.
func TestGradientsWholeModelLoRA(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		t.Run(cfg.ModelType, func(t *testing.T) {
			m := newTiny(t, cfg, 4)
			n := netAs[float64](t, m)
			pc := peft.DefaultConfig()
			pc.TargetModules = peft.TargetModules{AllLinear: true}
			pc.R, pc.LoraAlpha, pc.UseRSLoRA, pc.InitLoraWeights = 3, 5, true, "false"
			pc.ModulesToSave = []string{"lm_head"}
			if cfg.ModelType == "gpt2" {
				pc.Bias = "lora_only"
			}
			tr, err := initLoRA(n, pc, 9, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkGrads(t, n, tr, gradBatch(cfg.VocabSize), 4)
		})
	}
}

func TestGradientsWithCheckpointing(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 4)
	n := netAs[float64](t, m)
	n.checkpointing = true
	pc := peft.DefaultConfig("q_proj", "down_proj")
	pc.InitLoraWeights = "false"
	tr, err := initLoRA(n, pc, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkGrads(t, n, tr, gradBatch(32), 4)
}

// TestGradientsPartialTargets covers the backward pass where the MLP has no
// trainable weight (nothing is recomputed for it).
func TestGradientsPartialTargets(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		m := newTiny(t, cfg, 4)
		n := netAs[float64](t, m)
		pc := peft.DefaultConfig("q_proj", "c_attn")
		pc.InitLoraWeights = "false"
		tr, err := initLoRA(n, pc, 9, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkGrads(t, n, tr, gradBatch(32), 4)
	}
}

// TestGradientsNarrowMLP: an MLP narrower than the hidden size (the
// backward pass's dh then does not fit the MLP's own buffers), with all
// linear layers adapted, with and without checkpointing.
func TestGradientsNarrowMLP(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		cfg.Intermediate = cfg.Hidden / 2
		for _, ckpt := range []bool{false, true} {
			m := newTiny(t, cfg, 4)
			n := netAs[float64](t, m)
			n.checkpointing = ckpt
			pc := peft.DefaultConfig()
			pc.TargetModules = peft.TargetModules{AllLinear: true}
			pc.InitLoraWeights = "false"
			tr, err := initLoRA(n, pc, 9, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkGrads(t, n, tr, gradBatch(cfg.VocabSize), 4)
		}
	}
}
