package merge

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// layout describes a tiny generated checkpoint.
type layout struct {
	modelType string
	tensors   map[string][]int // name -> shape
	targets   []string         // adapted modules (without ".weight")
	fifo      bool
}

func llamaLayout(hidden, inter, layers, vocab int) layout {
	l := layout{modelType: "llama", tensors: map[string][]int{
		"model.embed_tokens.weight": {vocab, hidden},
		"model.norm.weight":         {hidden},
		"lm_head.weight":            {vocab, hidden},
	}}
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		for _, m := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			l.tensors[p+"self_attn."+m+".weight"] = []int{hidden, hidden}
		}
		l.tensors[p+"mlp.gate_proj.weight"] = []int{inter, hidden}
		l.tensors[p+"mlp.up_proj.weight"] = []int{inter, hidden}
		l.tensors[p+"mlp.down_proj.weight"] = []int{hidden, inter}
		l.tensors[p+"input_layernorm.weight"] = []int{hidden}
		l.tensors[p+"post_attention_layernorm.weight"] = []int{hidden}
		l.targets = append(l.targets, p+"self_attn.q_proj", p+"self_attn.v_proj", p+"mlp.down_proj")
	}
	return l
}

// gpt2Layout has no "transformer." prefix in the checkpoint, as the Hub's
// gpt2 does, while PEFT's keys carry it.
func gpt2Layout(hidden, layers, vocab int) layout {
	l := layout{modelType: "gpt2", fifo: true, tensors: map[string][]int{
		"wte.weight": {vocab, hidden}, "wpe.weight": {32, hidden},
		"ln_f.weight": {hidden}, "ln_f.bias": {hidden},
	}}
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("h.%d.", i)
		l.tensors[p+"attn.c_attn.weight"] = []int{hidden, 3 * hidden}
		l.tensors[p+"attn.c_attn.bias"] = []int{3 * hidden}
		l.tensors[p+"attn.c_proj.weight"] = []int{hidden, hidden}
		l.tensors[p+"mlp.c_fc.weight"] = []int{hidden, 4 * hidden}
		l.tensors[p+"mlp.c_proj.weight"] = []int{4 * hidden, hidden}
		l.tensors[p+"ln_1.weight"] = []int{hidden}
		l.targets = append(l.targets, "transformer."+p+"attn.c_attn", "transformer."+p+"attn.c_proj", "transformer."+p+"mlp.c_proj")
	}
	return l
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// writeCheckpoint writes the layout with random values in dtype into dir,
// in shards files (1 = model.safetensors), plus config.json and a
// tokenizer.json stand-in.
func writeCheckpoint(t testing.TB, dir string, l layout, dt safetensors.DType, shards int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	values := map[string][]float32{}
	for n, shape := range l.tensors {
		values[n] = nil
		_ = shape
	}
	names := make([]string, 0, len(l.tensors))
	for n := range l.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := make([]float32, numel(l.tensors[n]))
		for j := range v {
			v[j] = float32(rng.NormFloat64() * 0.5)
		}
		values[n] = v
	}
	writeCheckpointValues(t, dir, l, dt, shards, values)
	mustWrite(t, filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"model_type": %q}`, l.modelType)))
	mustWrite(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "BPE"}}`))
}

func copyConfig(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(to, "config.json"), b)
}

// writeCheckpointValues writes the given values in dtype into dir, in
// shards files (1 = model.safetensors).
func writeCheckpointValues(t testing.TB, dir string, l layout, dt safetensors.DType, shards int, values map[string][]float32) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(l.tensors))
	for n := range l.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	files := make([][]safetensors.Tensor, shards)
	weightMap := map[string]string{}
	for i, n := range names {
		data, err := safetensors.EncodeFloat32(dt, values[n])
		if err != nil {
			t.Fatal(err)
		}
		s := i % shards
		files[s] = append(files[s], safetensors.Tensor{Name: n, DType: dt, Shape: l.tensors[n], Data: data})
		weightMap[n] = shardName(s, shards)
	}
	for s, ts := range files {
		if err := safetensors.WriteFile(filepath.Join(dir, shardName(s, shards)), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if shards > 1 {
		idx, _ := json.Marshal(safetensors.Index{Metadata: map[string]any{"total_size": 0}, WeightMap: weightMap})
		mustWrite(t, filepath.Join(dir, safetensors.IndexFileName), idx)
	}
}

func shardName(s, n int) string {
	if n == 1 {
		return safetensors.SingleFileName
	}
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, n)
}

func mustWrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// randomAdapter makes a PEFT adapter for the layout's targets with shapes
// read from the base tensors.
func randomAdapter(l layout, r int, alpha float64, seed uint64) *peft.Adapter {
	rng := rand.New(rand.NewPCG(seed, 2))
	cfg := peft.DefaultConfig("q_proj", "v_proj")
	cfg.R, cfg.LoraAlpha, cfg.FanInFanOut = r, alpha, l.fifo
	a := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, m := range l.targets {
		base := m
		if l.fifo {
			base = m[len("transformer."):]
		}
		shape := l.tensors[base+".weight"]
		out, in := shape[0], shape[1]
		if l.fifo {
			in, out = shape[0], shape[1]
		}
		av := make([]float32, r*in)
		bv := make([]float32, out*r)
		for i := range av {
			av[i] = float32(rng.NormFloat64() * 0.3)
		}
		for i := range bv {
			bv[i] = float32(rng.NormFloat64() * 0.3)
		}
		a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)] = av, []int{r, in}
		a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)] = bv, []int{out, r}
	}
	return a
}

// expectedDelta returns ΔW in the base layout, in float64.
func expectedDelta(a *peft.Adapter, module string, weight float64, fifo bool) []float64 {
	sa, sb := a.Shapes[peft.KeyA(module)], a.Shapes[peft.KeyB(module)]
	r, in, out := sa[0], sa[1], sb[0]
	A, B := a.Tensors[peft.KeyA(module)], a.Tensors[peft.KeyB(module)]
	s := weight * a.Config.Scale(module)
	d := make([]float64, out*in)
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			var acc float64
			for k := 0; k < r; k++ {
				acc += float64(B[i*r+k]) * float64(A[k*in+j])
			}
			if fifo {
				d[j*out+i] = s * acc
			} else {
				d[i*in+j] = s * acc
			}
		}
	}
	return d
}
