package pipeline

import (
	"github.com/loraflow/loraflow/carbon"
	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
)

// TrainingFLOPs counts a run's FLOPs per token with the engine's own FLOP
// model (lora's Model.StepFLOPs) for the real model and PEFT config, LoRA
// and full fine-tuning, with trainable the run's trainable parameter count;
// the full-fine-tuning counterfactual is computed from them.
func TrainingFLOPs(m *lora.Model, pc peft.Config, tc lora.TrainConfig, trainable int64) carbon.FLOPCounts {
	batch, seq := max(tc.BatchSize, 1), tc.SeqLen
	if mp := m.Config().MaxPositions; seq <= 0 || seq > mp {
		seq = mp // as lora.Train truncates
	}
	tokens := float64(batch * seq)
	return carbon.FLOPCounts{
		LoRAPerToken:  m.StepFLOPs(pc, batch, seq, false) / tokens,
		FullPerToken:  m.StepFLOPs(pc, batch, seq, true) / tokens,
		Params:        int64(m.NumParams()),
		AdapterParams: trainable,
		Model:         "FLOPs per token: the engine's count of one training step (lora.Model.StepFLOPs: matrix products and causal attention) over batch x sequence tokens",
	}
}
