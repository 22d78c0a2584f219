package lora

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/quant"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// quantizeNet replaces the block linear weights of a float64 network by
// their quantized form, as LoadModelWith does for a float32 one.
func quantizeNet(t *testing.T, n *net[float64], c quant.Config) {
	t.Helper()
	for _, l := range n.linears() {
		if l.isHead {
			continue
		}
		q, err := quant.Quantize(toFloat32(l.w.w), c)
		if err != nil {
			t.Fatal(err)
		}
		l.w.lp, l.w.w = &quantWeight{q: q, cols: l.w.shape[1]}, nil
	}
}

// The gradients through quantized layers (the input gradients of the
// dequantized products, the LoRA factors' gradients beside them) agree
// with finite differences, in float64, for every type.
func TestGradientsThroughQuantizedLinear(t *testing.T) {
	for _, c := range []quant.Config{
		{Type: quant.NF4, BlockSize: 32, DoubleQuant: true},
		{Type: quant.FP4, BlockSize: 64},
		{Type: quant.INT8, BlockSize: 32, DoubleQuant: true},
	} {
		for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
			t.Run(string(c.Type)+"-"+cfg.ModelType, func(t *testing.T) {
				m := newTiny(t, cfg, 4)
				n := netAs[float64](t, m)
				quantizeNet(t, n, c)
				pc := peft.DefaultConfig()
				pc.TargetModules = peft.TargetModules{AllLinear: true}
				pc.R, pc.LoraAlpha, pc.InitLoraWeights = 3, 5, "false"
				tr, err := initLoRA(n, pc, 9, 0)
				if err != nil {
					t.Fatal(err)
				}
				checkGrads(t, n, tr, gradBatch(cfg.VocabSize), 4)
				for _, l := range n.linears() {
					if !l.isHead && (l.w.lp == nil || l.w.w != nil) {
						t.Fatalf("%s was widened", l.module)
					}
				}
			})
		}
	}
}

// QLoRA end to end: a BF16 checkpoint loaded with NF4 quantization keeps
// its block weights in about half a byte a value (the embeddings BF16),
// trains a standard PEFT adapter that loads back, repeats bit for bit, and
// its loss on the quantized model is close to the fp32 run's.
func TestQLoRATraining(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "base")
	saveAs(t, pretrainedTiny(t, tinyLlamaConfig()), dir, safetensors.BF16)
	c := &quant.Config{Type: quant.NF4, BlockSize: 64, DoubleQuant: true}
	qm := loadWith(t, dir, LoadOptions{Quantization: c})
	fm := loadWith(t, dir, LoadOptions{})
	dt := qm.WeightDTypes()
	if dt["NF4"] != 2*7 || dt["BF16"] != 2 {
		t.Fatalf("storage %v: want the 14 block linears NF4, the embeddings and head BF16", dt)
	}
	if qm.WeightBytes() >= fm.WeightBytes() {
		t.Errorf("NF4 model holds %d bytes, the BF16 one %d", qm.WeightBytes(), fm.WeightBytes())
	}
	if _, err := LoadModelWith(dir, LoadOptions{Quantization: &quant.Config{Type: "nf2", BlockSize: 64}}); err == nil {
		t.Error("quantization type nf2 accepted")
	}
	data := patternData(32, 32, 16, 3)
	ctx := context.Background()
	pc := llamaLoRAConfig("q_proj", "k_proj", "v_proj", "o_proj")
	tcfg := TrainConfig{Steps: 8, BatchSize: 8, LearningRate: 1e-2, Seed: 2}
	a1, _, err := Train(ctx, qm, pc, tcfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, _, err := Train(ctx, qm, pc, tcfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range a1.Tensors {
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(a2.Tensors[k][i]) {
				t.Fatalf("QLoRA runs differ at %s[%d]", k, i)
			}
		}
	}
	adir := filepath.Join(t.TempDir(), "adapter")
	if err := a1.Save(adir); err != nil {
		t.Fatal(err)
	}
	back, err := peft.Load(adir)
	if err != nil {
		t.Fatal(err)
	}
	eq, err := Evaluate(ctx, qm, back, data, 8)
	if err != nil {
		t.Fatal(err)
	}
	af, _, err := Train(ctx, fm, pc, tcfg, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := Evaluate(ctx, fm, af, data, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out loss: bf16 base %.4f, nf4 base %.4f", ef.Loss, eq.Loss)
	if d := math.Abs(eq.Loss-ef.Loss) / ef.Loss; d > 0.1 {
		t.Errorf("NF4 loss %v is %.1f%% from the unquantized run's %v", eq.Loss, 100*d, ef.Loss)
	}
}
