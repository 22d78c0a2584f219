package merge

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
)

// TestTrainedPiSSABothSavedForms trains from PiSSA/OLoRA with the engine and
// checks that PEFT's two saved forms agree: the converted rank-2r adapter
// Train returns, on the original base, gives the same logits as the trained
// factors (lora.MutatedFromConverted) on the residual model (InitFromBase,
// or for pissa_niter_K the unmerge of lora.InitialFromConverted); and the converted adapter merges into a model that passes
// EngineVerifier.
func TestTrainedPiSSABothSavedForms(t *testing.T) {
	cases := []struct {
		modelType, method string
		dora              bool
	}{{"llama", "pissa", false}, {"gpt2", "pissa", true}, {"llama", "olora", true}, {"gpt2", "olora", false}, {"gpt2", "pissa_niter_2", true}, {"llama", "pissa_niter_3", false}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-dora=%v", c.modelType, c.method, c.dora), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			m, base, data := tinyEngineBase(t, dir, c.modelType, 5)
			pc := peft.DefaultConfig()
			pc.TargetModules = peft.TargetModules{AllLinear: true}
			pc.R, pc.LoraAlpha, pc.UseDoRA, pc.InitLoraWeights = 4, 8, c.dora, peft.InitLoraWeights(c.method)
			conv, _, err := lora.Train(ctx, m, pc, lora.TrainConfig{Steps: 10, BatchSize: 8, LearningRate: 1e-2, Schedule: "constant", Seed: 1}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			mut, err := lora.MutatedFromConverted(conv, pc.InitLoraWeights)
			if err != nil {
				t.Fatal(err)
			}
			if mut.Config.R != pc.R || mut.Config.LoraAlpha != pc.LoraAlpha || mut.Config.InitLoraWeights != pc.InitLoraWeights {
				t.Fatalf("mutated config r %d alpha %v init %q", mut.Config.R, mut.Config.LoraAlpha, mut.Config.InitLoraWeights)
			}
			residual := filepath.Join(dir, "residual")
			// The residual W0 − s·B₀·A₀ does not depend on DoRA (InitFromBase
			// refuses a use_dora config: its unmerge sees a DoRA adapter).
			ic := pc
			ic.UseDoRA = false
			if strings.HasPrefix(c.method, "pissa_niter_") {
				// randomized factors: the residual comes from the adapter's own A₀, B₀
				initial, err := lora.InitialFromConverted(conv, pc.InitLoraWeights)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Unmerge(ctx, base, residual, Options{Adapters: []Weighted{{Name: "initial", Adapter: initial, Weight: 1}}, Logger: quiet}); err != nil {
					t.Fatal(err)
				}
			} else if _, _, err := InitFromBase(ctx, base, residual, ic, m.LinearModules(), Options{Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			rm, err := lora.LoadModel(residual)
			if err != nil {
				t.Fatal(err)
			}
			toks := []int{3, 8, 13, 18, 23, 28, 33, 38}
			want, err := lora.Logits(ctx, m, conv, toks)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lora.Logits(ctx, rm, mut, toks)
			if err != nil {
				t.Fatal(err)
			}
			baseLogits, _ := lora.Logits(ctx, m, nil, toks)
			var diff, effect float64
			for i := range want {
				diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
				effect = math.Max(effect, math.Abs(float64(baseLogits[i]-want[i])))
			}
			t.Logf("max |Δlogit| residual+mutated vs original+converted %.3g; adapter effect %.3g", diff, effect)
			if diff > 1e-4 || effect < 100*diff {
				t.Fatalf("forms disagree: max |Δlogit| %.3g (adapter effect %.3g)", diff, effect)
			}
			ws := []Weighted{{Name: "converted", Adapter: conv, Weight: 1}}
			rep, err := Merge(ctx, base, filepath.Join(dir, "merged"), Options{Adapters: ws, SafeMerge: true, Logger: quiet, Verify: EngineVerifier(base, ws, nil, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Equivalence == nil || !rep.Equivalence.Passed {
				t.Fatalf("equivalence %+v", rep.Equivalence)
			}
		})
	}
}
