package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/merge"
	"github.com/loraflow/loraflow/lora/peft"
)

// tinyModelAndAdapters saves a tiny llama and two rank-4 adapters for it.
func tinyModelAndAdapters(t *testing.T, dir string) (base, a1, a2 string) {
	t.Helper()
	m, err := lora.NewModel(lora.ModelConfig{ModelType: "llama", VocabSize: 40, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 24, MaxPositions: 32}, 1)
	if err != nil {
		t.Fatal(err)
	}
	base = filepath.Join(dir, "base")
	if err := m.Save(base); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, name := range []string{"a1", "a2"} {
		cfg := peft.DefaultConfig("q_proj", "v_proj")
		cfg.R, cfg.LoraAlpha = 4, 8
		a := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
		for _, mi := range m.LinearModules() {
			if !strings.HasSuffix(mi.Name, "q_proj") && !strings.HasSuffix(mi.Name, "v_proj") {
				continue
			}
			av, bv := make([]float32, 4*mi.In), make([]float32, mi.Out*4)
			for j := range av {
				av[j] = float32(rng.NormFloat64() * 0.3)
			}
			for j := range bv {
				bv[j] = float32(rng.NormFloat64() * 0.3 * float64(i+1))
			}
			a.Tensors[peft.KeyA(mi.Name)], a.Shapes[peft.KeyA(mi.Name)] = av, []int{4, mi.In}
			a.Tensors[peft.KeyB(mi.Name)], a.Shapes[peft.KeyB(mi.Name)] = bv, []int{mi.Out, 4}
		}
		if err := a.Save(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return base, filepath.Join(dir, "a1"), filepath.Join(dir, "a2")
}

func TestAdapterCommands(t *testing.T) {
	dir := t.TempDir()
	base, a1, a2 := tinyModelAndAdapters(t, dir)
	merged := filepath.Join(dir, "merged")
	report := filepath.Join(dir, "report.json")

	out, err := runCLI(t, "merge", "--base", base, "--adapter", a1, "--adapter", a2, "--weight", "0.7", "--weight", "0.3", "--out", merged, "--report", report)
	if err != nil || !strings.Contains(out, "equivalence: max |logit diff|") {
		t.Fatalf("merge: %v\n%s", err, out)
	}
	var rep merge.Report
	raw, _ := os.ReadFile(report)
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Equivalence == nil || !rep.Equivalence.Passed || len(rep.Tensors) != 2 {
		t.Fatalf("report: %v %+v", err, rep)
	}

	back := filepath.Join(dir, "back")
	if out, err := runCLI(t, "unmerge", "--merged", merged, "--adapter", a1, "--adapter", a2, "--weight", "0.7", "--weight", "0.3", "--out", back); err != nil {
		t.Fatalf("unmerge: %v\n%s", err, out)
	}

	combined := filepath.Join(dir, "combined")
	out, err = runCLI(t, "combine", "--adapter", a1, "--adapter", a2, "--weight", "1", "--weight", "-1", "--method", "cat", "--out", combined)
	if err != nil || !strings.Contains(out, "r = lora_alpha = 8") {
		t.Fatalf("combine: %v\n%s", err, out)
	}
	c, err := peft.Load(combined)
	if err != nil || c.Config.R != 8 || c.Config.LoraAlpha != 8 {
		t.Fatalf("combined adapter: %v %+v", err, c)
	}

	plot := filepath.Join(dir, "spectra.svg")
	out, err = runCLI(t, "inspect", a1, "--base", base, "--plot", plot)
	if err != nil || !strings.Contains(out, "suggested rank") || !strings.Contains(out, "trainable%") || !strings.Contains(out, "model.layers.0.self_attn.q_proj") {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	if st, err := os.Stat(plot); err != nil || st.Size() == 0 {
		t.Fatalf("plot: %v", err)
	}
	out, err = runCLI(t, "inspect", a1, "--json")
	if err != nil || !json.Valid([]byte(out)) {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
}

func TestAdapterCommandErrors(t *testing.T) {
	dir := t.TempDir()
	base, a1, a2 := tinyModelAndAdapters(t, dir)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"merge", "--base", base, "--out", filepath.Join(dir, "x")}, "--adapter"},
		{[]string{"merge", "--adapter", a1, "--out", filepath.Join(dir, "x")}, "--base is required"},
		{[]string{"merge", "--base", base, "--adapter", a1, "--weight", "1", "--weight", "2", "--out", filepath.Join(dir, "x")}, "2 --weight values for 1 adapters"},
		{[]string{"merge", "--base", base, "--adapter", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "x")}, "adapter_config.json"},
		{[]string{"merge", "--base", a1, "--adapter", a2, "--out", filepath.Join(dir, "x")}, "model.safetensors"},
		{[]string{"combine", "--adapter", a1, "--adapter", a2, "--weight", "1", "--weight", "1", "--method", "mean", "--out", filepath.Join(dir, "y")}, "unknown combination type"},
		{[]string{"combine", "--adapter", a1, "--adapter", a2, "--weight", "1", "--weight", "1", "--method", "ties", "--density", "2", "--out", filepath.Join(dir, "y")}, "density"},
		{[]string{"combine", "--adapter", a1, "--adapter", a2, "--weight", "1", "--weight", "1", "--method", "dare_ties", "--out", filepath.Join(dir, "y")}, "give --density"},
		{[]string{"inspect", filepath.Join(dir, "nope")}, "adapter_config.json"},
	} {
		out, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error()+out, c.want) {
			t.Errorf("%v: err = %v, want it to mention %q", c.args, err, c.want)
		}
	}
}
