package lora

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
)

// TestTrainedAdapterKeys checks the keys and shapes of trained adapters
// against PEFT's naming, key by key, and their round trip through disk.
func TestTrainedAdapterKeys(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		cfg     ModelConfig
		targets []string
		want    map[string][]int
	}{
		{tinyLlamaConfig(), []string{"q_proj", "v_proj"}, map[string][]int{}},
		{tinyGPT2Config(), []string{"c_attn"}, map[string][]int{}},
	}
	for l := 0; l < 2; l++ {
		q := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.q_proj", l)
		v := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.v_proj", l)
		cases[0].want[q+".lora_A.weight"] = []int{4, 16}
		cases[0].want[q+".lora_B.weight"] = []int{16, 4}
		cases[0].want[v+".lora_A.weight"] = []int{4, 16}
		cases[0].want[v+".lora_B.weight"] = []int{8, 4} // 2 kv heads × 4
		c := fmt.Sprintf("base_model.model.transformer.h.%d.attn.c_attn", l)
		cases[1].want[c+".lora_A.weight"] = []int{4, 16}
		cases[1].want[c+".lora_B.weight"] = []int{48, 4}
	}
	for _, tc := range cases {
		t.Run(tc.cfg.ModelType, func(t *testing.T) {
			m := newTiny(t, tc.cfg, 1)
			data := patternData(32, 16, 10, 1)
			a, _, err := Train(ctx, m, llamaLoRAConfig(tc.targets...), TrainConfig{Steps: 3, BatchSize: 4, LearningRate: 1e-2}, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Shapes, tc.want) {
				t.Fatalf("adapter keys/shapes\n got %v\nwant %v", a.Shapes, tc.want)
			}
			if a.Config.FanInFanOut != (tc.cfg.ModelType == "gpt2") {
				t.Fatalf("fan_in_fan_out = %v", a.Config.FanInFanOut)
			}
			dir := filepath.Join(t.TempDir(), "adapter")
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			b, err := peft.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			e1, err := Evaluate(ctx, m, a, data, 4)
			if err != nil {
				t.Fatal(err)
			}
			e2, err := Evaluate(ctx, m, b, data, 4)
			if err != nil {
				t.Fatal(err)
			}
			if e1.Loss != e2.Loss {
				t.Fatalf("loss with the loaded adapter %v != %v", e2.Loss, e1.Loss)
			}
		})
	}
	// An adapter for another architecture is refused, naming the module.
	m := newTiny(t, tinyLlamaConfig(), 1)
	g := newTiny(t, tinyGPT2Config(), 1)
	a, _, err := Train(ctx, g, llamaLoRAConfig("c_attn"), TrainConfig{Steps: 1, BatchSize: 2}, patternData(32, 4, 8, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Evaluate(ctx, m, a, patternData(32, 4, 8, 1), 2)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Kind != KindAdapterMismatch {
		t.Fatalf("mismatched adapter: %v", err)
	}
}
