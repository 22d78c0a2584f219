package merge

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/quant"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// An adapter trained against an NF4-quantized base (QLoRA) is a plain PEFT
// adapter, and the merge applies it to the original, unquantized
// checkpoint: W' = W0 + s·B·A with W0 read from the file, not the 4-bit
// values training multiplied by.
func TestMergeQLoRAAdapterIntoOriginal(t *testing.T) {
	ctx := context.Background()
	cfg := lora.ModelConfig{ModelType: "llama", VocabSize: 32, Hidden: 64, Layers: 1, Heads: 4, KVHeads: 2,
		Intermediate: 96, MaxPositions: 32, RopeTheta: 10000, NormEps: 1e-5, BosTokenID: -1, EosTokenID: -1}
	m, err := lora.NewModel(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "base")
	if err := m.Save(base); err != nil {
		t.Fatal(err)
	}
	qm, err := lora.LoadModelWith(base, lora.LoadOptions{Quantization: &quant.Config{Type: quant.NF4, BlockSize: 64, DoubleQuant: true}})
	if err != nil {
		t.Fatal(err)
	}
	var data []lora.Sequence
	for i := 0; i < 8; i++ {
		data = append(data, lora.Sequence{Tokens: []int{i, i + 1, i + 2, i + 3, i + 4, i + 5}})
	}
	pc := peft.DefaultConfig("q_proj")
	pc.R, pc.LoraAlpha = 4, 8
	a, _, err := lora.Train(ctx, qm, pc, lora.TrainConfig{Steps: 3, BatchSize: 4, LearningRate: 1e-2}, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := Merge(ctx, base, out, Options{Adapters: []Weighted{{Name: "qlora", Adapter: a, Weight: 1}}, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const mod = "model.layers.0.self_attn.q_proj"
	got, err := f.Float32(mod + ".weight")
	if err != nil {
		t.Fatal(err)
	}
	w0, _, _ := m.Tensor(mod + ".weight")
	wq, _, _ := qm.Tensor(mod + ".weight") // the dequantized values training saw
	A, B := a.Tensors[peft.KeyA(mod)], a.Tensors[peft.KeyB(mod)]
	s := a.Config.Scale(mod)
	r, in := pc.R, cfg.Hidden
	var fromQuant float64
	for i := 0; i < cfg.Hidden; i++ {
		for j := 0; j < in; j++ {
			var d float64
			for k := 0; k < r; k++ {
				d += float64(B[i*r+k]) * float64(A[k*in+j])
			}
			want := float64(w0[i*in+j]) + s*d
			if e := math.Abs(float64(got[i*in+j]) - want); e > 1e-6 {
				t.Fatalf("merged %s[%d][%d] = %v, want W0 + s·B·A = %v", mod, i, j, got[i*in+j], want)
			}
			fromQuant = math.Max(fromQuant, math.Abs(float64(got[i*in+j])-(float64(wq[i*in+j])+s*d)))
		}
	}
	if fromQuant < 1e-4 {
		t.Errorf("the merge matches the dequantized weights (max diff %g): it should apply to the original", fromQuant)
	}
}
