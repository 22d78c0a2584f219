package merge

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
)

// TestMergeTrainedDoRAPassesEngineVerifier trains DoRA adapters with the
// engine (Llama and GPT-2 layouts), merges them and checks the merged model
// against base + adapter with EngineVerifier; the same tensors read as a
// plain LoRA adapter fail the check, so it is not vacuous.
func TestMergeTrainedDoRAPassesEngineVerifier(t *testing.T) {
	for _, modelType := range []string{"llama", "gpt2"} {
		t.Run(modelType, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			m, base, data := tinyEngineBase(t, dir, modelType, 3)
			pc := peft.DefaultConfig()
			pc.TargetModules = peft.TargetModules{AllLinear: true}
			pc.R, pc.LoraAlpha, pc.UseDoRA = 4, 8, true
			a, _, err := lora.Train(ctx, m, pc, lora.TrainConfig{Steps: 15, BatchSize: 8, LearningRate: 2e-2, Schedule: "constant", Seed: 1}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			ws := []Weighted{{Name: "dora", Adapter: a, Weight: 1}}
			merged := filepath.Join(dir, "merged")
			rep, err := Merge(ctx, base, merged, Options{Adapters: ws, SafeMerge: true, Logger: quiet, Verify: EngineVerifier(base, ws, nil, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Equivalence == nil || !rep.Equivalence.Passed {
				t.Fatalf("equivalence %+v", rep.Equivalence)
			}
			t.Logf("%s: DoRA merge max |Δlogit| %.3g (tolerance %.3g)", modelType, rep.Equivalence.MaxAbsLogitDiff, rep.Equivalence.Tolerance)

			plain := &peft.Adapter{Config: a.Config, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
			plain.Config.UseDoRA = false
			for k, v := range a.Tensors {
				if _, kind, _ := peft.ParseKey(k); kind != "lora_magnitude_vector" {
					plain.Tensors[k], plain.Shapes[k] = v, a.Shapes[k]
				}
			}
			bad, err := EquivalenceAdapters(ctx, base, []Weighted{{Name: "plain", Adapter: plain, Weight: 1}}, merged, nil, 0)
			if !errors.Is(err, ErrNotEquivalent) {
				t.Fatalf("plain LoRA reading of the DoRA adapter: err = %v, report %+v", err, bad)
			}
		})
	}
}
