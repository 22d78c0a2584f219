package lora

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

// TestFamilyFolders saves each family as a Hugging Face folder with a
// generation_config.json, loads it back, and trains, saves and reloads a
// LoRA adapter with PEFT's default target_modules and with all-linear:
// the adapter keys are PEFT's (base_model.model.<module>.lora_A.weight with
// the family's module names), all-linear leaves the output head out, tied
// heads are not stored twice, and the reloaded adapter evaluates the same.
func TestFamilyFolders(t *testing.T) {
	ctx := context.Background()
	for i, cfg := range tinyFamilyConfigs() {
		t.Run(fmt.Sprintf("%s-%d", cfg.ModelType, i), func(t *testing.T) {
			m := newTiny(t, cfg, 2)
			dir := t.TempDir()
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"bos_token_id":1,"eos_token_id":[3,7],"do_sample":true}`), 0o644)
			m2, err := LoadModel(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := m2.StopTokens(); !reflect.DeepEqual(got, []int{3, 7}) {
				t.Fatalf("stop tokens %v", got)
			}
			names := m2.TensorNames()
			if cfg.TieWordEmbeddings == slices.Contains(names, "lm_head.weight") {
				t.Fatalf("tied %v but lm_head.weight stored: %v", cfg.TieWordEmbeddings, names)
			}
			var mods []string
			for _, mi := range m2.LinearModules() {
				mods = append(mods, mi.Name[strings.LastIndexByte(mi.Name, '.')+1:])
			}
			want := []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
			if cfg.Fused {
				want = []string{"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
			}
			if got := slices.Compact(slices.Sorted(slices.Values(mods[:len(mods)-1]))); !reflect.DeepEqual(got, slices.Sorted(slices.Values(want))) {
				t.Fatalf("linear modules %v, want %v", got, want)
			}
			data := patternData(cfg.VocabSize, 16, 10, 1)
			def, ok := peft.DefaultTargetModules(cfg.ModelType)
			if cfg.Fused {
				if ok {
					t.Fatal("PEFT has no phi3 default, but one was returned")
				}
				def = []string{"qkv_proj"}
			}
			for _, targets := range []peft.TargetModules{{List: def}, {AllLinear: true}} {
				pc := llamaLoRAConfig()
				pc.TargetModules = targets
				pc.InitLoraWeights = "false"
				a, _, err := Train(ctx, m2, pc, TrainConfig{Steps: 2, BatchSize: 4, LearningRate: 1e-2}, data, nil)
				if err != nil {
					t.Fatal(err)
				}
				for key := range a.Shapes {
					mod, _, ok := peft.ParseKey(key)
					if !ok || !strings.HasPrefix(key, "base_model.model.model.layers.") || m2.net.findLinear(mod) == nil {
						t.Fatalf("adapter key %q is not a PEFT key of this model", key)
					}
					if strings.Contains(key, "lm_head") {
						t.Fatalf("%v adapted the output head: %q", targets, key)
					}
				}
				if targets.AllLinear && len(a.Modules()) != len(m2.LinearModules())-1 {
					t.Fatalf("all-linear adapted %d of %d modules", len(a.Modules()), len(m2.LinearModules())-1)
				}
				ad := filepath.Join(t.TempDir(), "adapter")
				if err := a.Save(ad); err != nil {
					t.Fatal(err)
				}
				b, err := peft.Load(ad)
				if err != nil {
					t.Fatal(err)
				}
				e1, err1 := Evaluate(ctx, m2, a, data, 4)
				e2, err2 := Evaluate(ctx, m2, b, data, 4)
				if err1 != nil || err2 != nil || e1.Loss != e2.Loss {
					t.Fatalf("reloaded adapter: %v %v, loss %v vs %v", err1, err2, e1.Loss, e2.Loss)
				}
			}
		})
	}
}
