package pipeline

import (
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
)

// TestTrainingFLOPsFollowTheEngine: the counts are the engine's step FLOPs
// per token at the sequence length Train really uses (seq_len beyond the
// model's positions is truncated), and full fine-tuning costs more than
// LoRA on the same tokens.
func TestTrainingFLOPsFollowTheEngine(t *testing.T) {
	m, err := lora.NewModel(lora.ModelConfig{ModelType: "llama", VocabSize: 64, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 1,
		Intermediate: 32, MaxPositions: 16, BosTokenID: -1, EosTokenID: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	pc := peft.DefaultConfig("q_proj", "v_proj")
	fc := TrainingFLOPs(m, pc, lora.TrainConfig{BatchSize: 2, SeqLen: 1000}, 123)
	if want := m.StepFLOPs(pc, 2, 16, false) / 32; fc.LoRAPerToken != want {
		t.Fatalf("LoRA FLOPs per token %g, want %g (seq_len truncated to 16)", fc.LoRAPerToken, want)
	}
	if want := m.StepFLOPs(pc, 2, 16, true) / 32; fc.FullPerToken != want || fc.FullPerToken <= fc.LoRAPerToken {
		t.Fatalf("full FLOPs per token %g (LoRA %g), want %g", fc.FullPerToken, fc.LoRAPerToken, want)
	}
	if fc.Params != int64(m.NumParams()) || fc.AdapterParams != 123 || fc.Model == "" {
		t.Fatalf("counts %+v", fc)
	}
}
