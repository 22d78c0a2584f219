package lora

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

func TestLoRATrainingLowersLoss(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		t.Run(cfg.ModelType, func(t *testing.T) {
			m := pretrainedTiny(t, cfg)
			data := shiftedData(cfg.VocabSize, 64, 16, 1)
			held := shiftedData(cfg.VocabSize, 16, 16, 2)
			pc := llamaLoRAConfig("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
			if cfg.ModelType == "gpt2" {
				pc = llamaLoRAConfig("c_attn", "c_proj", "c_fc")
			}
			before, err := Evaluate(context.Background(), m, nil, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			var steps int
			a, res, err := Train(context.Background(), m, pc, TrainConfig{Steps: 60, BatchSize: 8, LearningRate: 1e-2, Schedule: "cosine", WarmupSteps: 5, Seed: 3},
				data, func(p Progress) { steps = p.Step })
			if err != nil {
				t.Fatal(err)
			}
			if steps != 60 || res.Steps != 60 || len(res.Losses) != 60 {
				t.Fatalf("steps %d, result %+v", steps, res)
			}
			after, err := Evaluate(context.Background(), m, a, held, 8)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: held-out loss %.3f → %.3f, train loss %.3f → %.3f, %.0f tokens/s", cfg.ModelType, before.Loss, after.Loss, res.Losses[0], res.FinalLoss, res.TokensPerSec)
			if !(after.Loss < before.Loss-0.5) {
				t.Fatalf("held-out loss did not drop enough: %.4f → %.4f", before.Loss, after.Loss)
			}
			// base weights are untouched by LoRA training
			again, _ := Evaluate(context.Background(), m, nil, held, 8)
			if again.Loss != before.Loss {
				t.Fatalf("base model changed: %v → %v", before.Loss, again.Loss)
			}
		})
	}
}

func TestFullFineTuneLowersLoss(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 2)
	data := patternData(32, 64, 16, 3)
	before, _ := Evaluate(context.Background(), m, nil, data, 8)
	a, res, err := Train(context.Background(), m, peft.Config{}, TrainConfig{Steps: 40, BatchSize: 8, LearningRate: 1e-2, Schedule: "constant", FullFineTune: true}, data, nil)
	if err != nil || a != nil {
		t.Fatal(a, err)
	}
	after, _ := Evaluate(context.Background(), m, nil, data, 8)
	t.Logf("full fine-tune: loss %.3f → %.3f (trainable %d)", before.Loss, after.Loss, res.TrainableParams)
	if !(after.Loss < before.Loss-0.5) || res.TrainableParams != m.NumParams() {
		t.Fatalf("loss %.4f → %.4f, trainable %d of %d", before.Loss, after.Loss, res.TrainableParams, m.NumParams())
	}
}

func TestFrozenBaseHasNoGradients(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 1)
	n := m.net.clone()
	tr, err := initLoRA(n, llamaLoRAConfig("q_proj", "v_proj"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	newOptimizer(tr)
	for _, p := range n.params {
		if p.g != nil {
			t.Fatalf("frozen %s has a gradient buffer", p.name)
		}
	}
	if len(tr) != 2*2*2 {
		t.Fatalf("%d trainable tensors, want 8", len(tr))
	}
}

func TestBadInput(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 1)
	data := patternData(32, 8, 8, 1)
	ctx := context.Background()
	pc := llamaLoRAConfig("q_proj")
	pc.R = 17
	_, _, err := Train(ctx, m, pc, TrainConfig{Steps: 1}, data, nil)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Kind != KindRankTooLarge || !strings.Contains(err.Error(), "model.layers.0.self_attn.q_proj") {
		t.Fatalf("r too large: %v", err)
	}
	_, _, err = Train(ctx, m, llamaLoRAConfig("qkv_proj"), TrainConfig{Steps: 1}, data, nil)
	if !errors.As(err, &ie) || ie.Kind != KindTargetModuleNotFound || !strings.Contains(err.Error(), "down_proj [24→16] ×2") {
		t.Fatalf("no target: %v", err)
	}
	// A layer the model lacks names layers_to_transform and the model's
	// layers (BadConfig), not "matches no linear layer".
	pc = llamaLoRAConfig("q_proj")
	pc.LayersToTransform = peft.IntList{0, 99}
	_, _, err = Train(ctx, m, pc, TrainConfig{Steps: 1}, data, nil)
	if !errors.As(err, &ie) || ie.Kind != KindBadConfig || !strings.Contains(err.Error(), "layers_to_transform [0 99]: layer 99 does not exist; the model has 2 layers") {
		t.Fatalf("layer 99: %v", err)
	}
	_, _, err = Train(ctx, m, llamaLoRAConfig("q_proj"), TrainConfig{Steps: 1}, []Sequence{{Tokens: []int{1, 99}}}, nil)
	if !errors.As(err, &ie) || ie.Kind != KindBadData {
		t.Fatalf("token out of range: %v", err)
	}
	_, _, err = Train(ctx, m, llamaLoRAConfig("q_proj"), TrainConfig{Steps: 1}, []Sequence{{Tokens: []int{1, 2}, PromptLen: 2}, {Tokens: []int{3}}}, nil)
	if !errors.As(err, &ie) || ie.Kind != KindBadData {
		t.Fatalf("nothing to predict: %v", err)
	}
	// a NaN in the weights makes the loss NaN at step 1
	bad := newTiny(t, tinyLlamaConfig(), 1)
	bad.net.blocks[0].ln1.w.w[0] = float32(math.NaN())
	_, _, err = Train(ctx, bad, llamaLoRAConfig("q_proj"), TrainConfig{Steps: 3}, data, nil)
	if !errors.As(err, &ie) || ie.Kind != KindNonFiniteLoss || !strings.Contains(err.Error(), "at step 1") {
		t.Fatalf("NaN loss: %v", err)
	}
}
