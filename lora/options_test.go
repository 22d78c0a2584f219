package lora

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

func keysOf(a *peft.Adapter) []string {
	k := a.Names()
	sort.Strings(k)
	return k
}

func TestAdapterOptions(t *testing.T) {
	ctx := context.Background()
	data := patternData(32, 16, 10, 1)
	tc := TrainConfig{Steps: 2, BatchSize: 4, LearningRate: 1e-2}

	// layers_to_transform + rank_pattern
	m := newTiny(t, tinyLlamaConfig(), 1)
	pc := llamaLoRAConfig("q_proj", "down_proj")
	pc.LayersToTransform = peft.IntList{1}
	pc.RankPattern = map[string]int{"down_proj": 2}
	a, _, err := Train(ctx, m, pc, tc, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
		"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
		"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
	}
	if got := keysOf(a); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("layers_to_transform keys %q", got)
	}
	if s := a.Shapes[want[0]]; s[0] != 2 || s[1] != 24 {
		t.Fatalf("rank_pattern shape %v", s)
	}

	// modules_to_save and bias=all on GPT-2 (tied head gets its own copy)
	g := newTiny(t, tinyGPT2Config(), 1)
	pc = llamaLoRAConfig("c_attn")
	pc.Bias = "all"
	pc.ModulesToSave = []string{"lm_head"}
	base0, _ := Evaluate(ctx, g, nil, data, 4)
	a, _, err = Train(ctx, g, pc, tc, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"base_model.model.lm_head.weight", "base_model.model.transformer.h.0.mlp.c_fc.bias",
		"base_model.model.transformer.h.1.attn.c_attn.base_layer.bias", "base_model.model.transformer.ln_f.bias"} {
		if _, ok := a.Tensors[k]; !ok {
			t.Fatalf("bias=all/modules_to_save: %s missing from %q", k, keysOf(a))
		}
	}
	if _, ok := a.Tensors["base_model.model.transformer.ln_f.weight"]; ok {
		t.Fatal("bias=all saved a norm weight")
	}
	base, _ := Evaluate(ctx, g, nil, data, 4)
	if base.Loss != base0.Loss {
		t.Fatalf("training biases / modules_to_save changed the base model: %v → %v", base0.Loss, base.Loss)
	}
	with, err := Evaluate(ctx, g, a, data, 4)
	if err != nil || with.Loss == base.Loss {
		t.Fatalf("adapter with saved head: %v %v %v", err, with.Loss, base.Loss)
	}
	// bias=lora_only saves only the adapted layers' biases
	pc.Bias, pc.ModulesToSave = "lora_only", nil
	a, _, err = Train(ctx, g, pc, tc, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keysOf(a) {
		if strings.HasSuffix(k, ".bias") && !strings.Contains(k, "c_attn") {
			t.Fatalf("lora_only saved %s", k)
		}
	}
	if len(a.Tensors) != 6 {
		t.Fatalf("lora_only: %q", keysOf(a))
	}

	// gaussian init: B = 0, A ~ N(0, 1/r)
	n := m.net.clone()
	pc = llamaLoRAConfig("up_proj")
	pc.R, pc.InitLoraWeights = 8, "gaussian"
	tr, err := initLoRA(n, pc, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	cnt := 0
	for _, x := range tr {
		if strings.Contains(x.key, "lora_A") {
			for _, v := range x.p.w {
				ss += float64(v) * float64(v)
				cnt++
			}
		} else {
			for _, v := range x.p.w {
				if v != 0 {
					t.Fatal("gaussian init: B is not zero")
				}
			}
		}
	}
	if std := math.Sqrt(ss / float64(cnt)); math.Abs(std-1.0/8) > 0.02 {
		t.Fatalf("gaussian A std %.4f, want 0.125", std)
	}
	// Kaiming-uniform (init true): |A| ≤ 1/√in
	n = m.net.clone()
	pc.InitLoraWeights = "true"
	tr, _ = initLoRA(n, pc, 1, 0)
	for _, v := range tr[0].p.w {
		if math.Abs(float64(v)) > 1/math.Sqrt(16) {
			t.Fatalf("kaiming A value %v beyond 1/√16", v)
		}
	}
}

func TestLoraPlusScalesBLearningRate(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 1)
	tr, err := initLoRA(m.net.clone(), llamaLoRAConfig("q_proj"), 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tr {
		want := 1.0
		if strings.Contains(x.key, "lora_B") {
			want = 16
		}
		if x.lrScale != want {
			t.Fatalf("%s lr scale %v", x.key, x.lrScale)
		}
	}
}

// TestGradAccumulationMatchesLargerBatch: 2 micro-batches of 2 give the
// same step as one batch of 4 (same sequences).
func TestGradAccumulationMatchesLargerBatch(t *testing.T) {
	ctx := context.Background()
	m := newTiny(t, tinyLlamaConfig(), 1)
	data := patternData(32, 8, 10, 3)
	pc := llamaLoRAConfig("q_proj", "v_proj")
	pc.InitLoraWeights = "false"
	a1, r1, err := Train(ctx, m, pc, TrainConfig{Steps: 2, BatchSize: 4, LearningRate: 1e-2, Seed: 1}, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, r2, err := Train(ctx, m, pc, TrainConfig{Steps: 2, BatchSize: 2, GradAccumSteps: 2, LearningRate: 1e-2, Seed: 1}, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r1.Losses {
		if math.Abs(r1.Losses[i]-r2.Losses[i]) > 1e-5 {
			t.Fatalf("step %d loss %v vs %v", i, r1.Losses[i], r2.Losses[i])
		}
	}
	for k, v := range a1.Tensors {
		for i := range v {
			if math.Abs(float64(v[i]-a2.Tensors[k][i])) > 1e-4 {
				t.Fatalf("%s[%d]: %v vs %v", k, i, v[i], a2.Tensors[k][i])
			}
		}
	}
}

func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		s          string
		step, want float64
	}{{"constant", 5, 1}, {"linear", 0, 0}, {"linear", 2, 1}, {"linear", 6, 0.5}, {"cosine", 6, 0.5}, {"cosine", 10, 0}, {"linear", 1, 0.5}} {
		if got := learningRate(tc.s, 1, int(tc.step), 2, 10); math.Abs(got-tc.want) > 1e-12 {
			t.Fatalf("%s at %v: %v, want %v", tc.s, tc.step, got, tc.want)
		}
	}
}

func TestGPT2WithoutTransformerPrefix(t *testing.T) {
	m := newTiny(t, tinyGPT2Config(), 2)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	// rewrite the weights without the prefix, as GPT2Model saves them
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		b, _ := f.Bytes(name)
		ts = append(ts, safetensors.Tensor{Name: strings.TrimPrefix(name, "transformer."), DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), b...)})
	}
	f.Close()
	os.Remove(filepath.Join(dir, "model.safetensors"))
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mods := m2.LinearModules(); mods[0].Name != "transformer.h.0.attn.c_attn" || !mods[0].Conv1D || mods[0].Out != 48 {
		t.Fatalf("modules %+v", mods[0])
	}
	a, _ := Logits(context.Background(), m, nil, []int{1, 2, 3})
	b, _ := Logits(context.Background(), m2, nil, []int{1, 2, 3})
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("logits differ")
		}
	}
}

func TestClassificationAndSampling(t *testing.T) {
	ctx := context.Background()
	m := pretrainedTiny(t, tinyLlamaConfig())
	// prompt: a run with step 1; the label is its next token.
	var data []Sequence
	labels := [][]int{{10}, {11}, {12}}
	for i := 0; i < 3; i++ {
		p := []int{6 + i, 7 + i, 8 + i, 9 + i}
		data = append(data, Sequence{Tokens: append(p, 10+i), PromptLen: 4})
	}
	acc, err := ClassificationAccuracy(ctx, m, nil, data, labels)
	if err != nil {
		t.Fatal(err)
	}
	if acc != 1 {
		t.Fatalf("accuracy %v on a task the model was trained on", acc)
	}
	data[1].Tokens[4] = 12 // a wrong gold label
	if acc, _ = ClassificationAccuracy(ctx, m, nil, data, labels); math.Abs(acc-2.0/3) > 1e-12 {
		t.Fatalf("accuracy %v with one wrong gold label, want 2/3", acc)
	}
	// greedy continues the pattern; sampling is reproducible by seed and respects top-k 1 and stop tokens
	out, err := Generate(ctx, m, nil, []int{3, 4, 5}, GenerateOptions{MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 || out[0] != 6 {
		t.Fatalf("greedy %v", out)
	}
	k1, _ := Generate(ctx, m, nil, []int{3, 4, 5}, GenerateOptions{MaxTokens: 4, Temperature: 2, TopK: 1, Seed: 9})
	if fmtInts(k1) != fmtInts(out) {
		t.Fatalf("top-k 1 %v differs from greedy %v", k1, out)
	}
	s1, _ := Generate(ctx, m, nil, []int{3}, GenerateOptions{MaxTokens: 8, Temperature: 1.5, TopP: 0.9, Seed: 4})
	s2, _ := Generate(ctx, m, nil, []int{3}, GenerateOptions{MaxTokens: 8, Temperature: 1.5, TopP: 0.9, Seed: 4})
	if fmtInts(s1) != fmtInts(s2) {
		t.Fatalf("same seed, different samples: %v %v", s1, s2)
	}
	st, _ := Generate(ctx, m, nil, []int{3, 4, 5}, GenerateOptions{MaxTokens: 4, StopTokens: []int{out[1]}})
	if len(st) != 1 || st[0] != out[0] {
		t.Fatalf("stop token: %v", st)
	}
}

func fmtInts(x []int) string {
	var b strings.Builder
	for _, v := range x {
		b.WriteString(string(rune('a' + v)))
	}
	return b.String()
}
