package merge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

func readAll(t *testing.T, dir string) *safetensors.Checkpoint {
	t.Helper()
	c, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ulpTol(dt safetensors.DType, x float64) float64 {
	switch dt {
	case safetensors.BF16:
		return math.Abs(x)*(1.0/128) + 1e-6
	case safetensors.F16:
		return math.Abs(x)*(1.0/1024) + 1e-4
	}
	return math.Abs(x)*1e-6 + 1e-6
}

func TestMergeMatchesMath(t *testing.T) {
	cases := []struct {
		name   string
		l      layout
		dt     safetensors.DType
		shards int
	}{
		{"llama-f32", llamaLayout(16, 24, 2, 40), safetensors.F32, 1},
		{"llama-bf16-sharded", llamaLayout(16, 24, 2, 40), safetensors.BF16, 3},
		{"gpt2-f32-sharded", gpt2Layout(12, 2, 30), safetensors.F32, 2},
		{"gpt2-bf16", gpt2Layout(12, 2, 30), safetensors.BF16, 1},
		{"llama-f16", llamaLayout(8, 12, 1, 20), safetensors.F16, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			baseDir, outDir, backDir := filepath.Join(tmp, "base"), filepath.Join(tmp, "merged"), filepath.Join(tmp, "unmerged")
			writeCheckpoint(t, baseDir, c.l, c.dt, c.shards, 7)
			a1 := randomAdapter(c.l, 4, 8, 1)
			a2 := randomAdapter(c.l, 2, 4, 2)
			a2.Config.UseRSLoRA = true
			adapters := []Weighted{{Name: "a1", Adapter: a1, Weight: 1}, {Name: "a2", Adapter: a2, Weight: -0.5}}
			// Small blocks exercise the row-block path.
			rep, err := Merge(context.Background(), baseDir, outDir, Options{Adapters: adapters, SafeMerge: true, BlockElements: 50})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Tensors) != len(c.l.targets) || rep.UntouchedTensors != len(c.l.tensors)-len(c.l.targets) {
				t.Fatalf("report: %d tensors merged, %d untouched; want %d and %d", len(rep.Tensors), rep.UntouchedTensors, len(c.l.targets), len(c.l.tensors)-len(c.l.targets))
			}
			base, merged := readAll(t, baseDir), readAll(t, outDir)
			targets := map[string]string{}
			for _, m := range c.l.targets {
				targets[strings.TrimPrefix(m, "transformer.")+".weight"] = m
			}
			for _, name := range base.Names() {
				bb, _ := base.Bytes(name)
				mb, err := merged.Bytes(name)
				if err != nil {
					t.Fatal(err)
				}
				module, adapted := targets[name]
				if !adapted {
					if !bytes.Equal(bb, mb) {
						t.Fatalf("untouched tensor %q changed", name)
					}
					continue
				}
				w0, _ := base.Float32(name)
				w1, _ := merged.Float32(name)
				d1 := expectedDelta(a1, module, 1, c.l.fifo)
				d2 := expectedDelta(a2, module, -0.5, c.l.fifo)
				for i := range w0 {
					want := float64(w0[i]) + d1[i] + d2[i]
					if diff := math.Abs(float64(w1[i]) - want); diff > ulpTol(c.dt, want) {
						t.Fatalf("%s[%d] = %g, want %g (diff %g)", name, i, w1[i], want, diff)
					}
				}
			}
			// Every other file is copied byte for byte.
			for _, f := range []string{"config.json", "tokenizer.json", safetensors.IndexFileName} {
				want, err1 := os.ReadFile(filepath.Join(baseDir, f))
				got, err2 := os.ReadFile(filepath.Join(outDir, f))
				if !errors.Is(err1, os.ErrNotExist) && (err1 != nil || err2 != nil || !bytes.Equal(got, want)) {
					t.Fatalf("%s not copied as is (%v, %v)", f, err1, err2)
				}
			}
			// Unmerge restores the base within rounding.
			if _, err := Unmerge(context.Background(), outDir, backDir, Options{Adapters: adapters}); err != nil {
				t.Fatal(err)
			}
			back := readAll(t, backDir)
			for name := range targets {
				w0, _ := base.Float32(name)
				wb, _ := back.Float32(name)
				for i := range w0 {
					// Two roundings: the merged value's and the restored one's.
					if diff := math.Abs(float64(wb[i] - w0[i])); diff > 4*ulpTol(c.dt, 3) {
						t.Fatalf("unmerged %s[%d] = %g, base %g", name, i, wb[i], w0[i])
					}
				}
			}
			entries, _ := os.ReadDir(tmp)
			if len(entries) != 3 {
				t.Fatalf("temporary folders left behind: %v", entries)
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	tmp := t.TempDir()
	l := llamaLayout(8, 12, 1, 20)
	baseDir := filepath.Join(tmp, "base")
	writeCheckpoint(t, baseDir, l, safetensors.F32, 1, 3)
	merge := func(a *peft.Adapter, safe bool) error {
		_, err := Merge(context.Background(), baseDir, filepath.Join(tmp, "out"), Options{Adapters: []Weighted{{Name: "bad", Adapter: a, Weight: 1}}, SafeMerge: safe})
		return err
	}

	unknown := randomAdapter(l, 2, 2, 1)
	m := "model.layers.7.self_attn.q_proj"
	unknown.Tensors[peft.KeyA(m)], unknown.Shapes[peft.KeyA(m)] = make([]float32, 16), []int{2, 8}
	unknown.Tensors[peft.KeyB(m)], unknown.Shapes[peft.KeyB(m)] = make([]float32, 16), []int{8, 2}
	if err := merge(unknown, false); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "model.layers.7.self_attn.q_proj.weight") {
		t.Fatalf("unknown module: %v", err)
	}

	wrong := randomAdapter(l, 2, 2, 1)
	m = "model.layers.0.mlp.down_proj"
	wrong.Tensors[peft.KeyA(m)], wrong.Shapes[peft.KeyA(m)] = make([]float32, 2*8), []int{2, 8}
	if err := merge(wrong, false); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "model.layers.0.mlp.down_proj.weight") {
		t.Fatalf("wrong shape: %v", err)
	}

	nan := randomAdapter(l, 2, 2, 1)
	nan.Tensors[peft.KeyB("model.layers.0.self_attn.v_proj")][3] = float32(math.Inf(1))
	if err := merge(nan, true); !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "v_proj.weight") {
		t.Fatalf("safe merge of Inf: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "out")); !os.IsNotExist(err) {
		t.Fatalf("failed merge left an output folder: %v", err)
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 1 {
		t.Fatalf("failed merge left temporary folders: %v", entries)
	}

	for _, inside := range []string{baseDir, filepath.Join(baseDir, "merged")} {
		_, err := Merge(context.Background(), baseDir, inside, Options{Adapters: []Weighted{{Adapter: randomAdapter(l, 2, 2, 1), Weight: 1}}})
		if err == nil || !strings.Contains(err.Error(), "inside the base folder") {
			t.Fatalf("output %s: %v", inside, err)
		}
	}
	if err := merge(randomAdapter(l, 2, 2, 1), false); err != nil {
		t.Fatal(err)
	}
	if err := merge(randomAdapter(l, 2, 2, 1), false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("existing output: %v", err)
	}
}

func TestModulesToSaveReplacesTensor(t *testing.T) {
	tmp := t.TempDir()
	l := llamaLayout(8, 12, 1, 20)
	baseDir := filepath.Join(tmp, "base")
	writeCheckpoint(t, baseDir, l, safetensors.F32, 1, 3)
	a := randomAdapter(l, 2, 2, 1)
	head := make([]float32, 20*8)
	for i := range head {
		head[i] = float32(i)
	}
	for i, key := range []string{"lm_head.weight", "lm_head.modules_to_save.weight"} { // current and older PEFT keys
		a.Tensors = map[string][]float32{peft.KeyParam(key): head}
		a.Shapes = map[string][]int{peft.KeyParam(key): {20, 8}}
		out := filepath.Join(tmp, fmt.Sprint("out", i))
		if _, err := Merge(context.Background(), baseDir, out, Options{Adapters: []Weighted{{Adapter: a, Weight: 1}}, Logger: quiet}); err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(t, out).Float32("lm_head.weight")
		for i := range head {
			if got[i] != head[i] {
				t.Fatalf("%s: lm_head.weight[%d] = %g, want the saved %g", key, i, got[i], head[i])
			}
		}
	}
}

// PEFT saves the bias of an adapted layer under its wrapper (bias="all" or
// "lora_only"): "base_model.model.<module>.base_layer.bias"
// (peft/utils/save_and_load.py, get_peft_model_state_dict; the LoRA layer
// holds the original module as base_layer, peft/tuners/lora/layer.py). The
// merge writes it over the base checkpoint's "<module>.bias".
func TestTrainedBiasOfAdaptedLayerReplacesBaseBias(t *testing.T) {
	tmp := t.TempDir()
	l := gpt2Layout(6, 1, 20)
	baseDir := filepath.Join(tmp, "base")
	writeCheckpoint(t, baseDir, l, safetensors.F32, 1, 3)
	a := randomAdapter(l, 2, 2, 1)
	module := l.targets[0]
	bias := make([]float32, 3*6)
	for i := range bias {
		bias[i] = float32(i) + 0.5
	}
	key := peft.KeyBias(module, true)
	a.Tensors[key], a.Shapes[key] = bias, []int{len(bias)}
	a.Config.Bias = "all"
	out := filepath.Join(tmp, "merged")
	if _, err := Merge(context.Background(), baseDir, out, Options{Adapters: []Weighted{{Adapter: a, Weight: 1}}, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(module, "transformer.") + ".bias"
	got, err := readAll(t, out).Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, bias) {
		t.Fatalf("%s = %v, want the adapter's %v", name, got, bias)
	}
}

func TestBaseTensorName(t *testing.T) {
	names := map[string]bool{"h.0.attn.c_attn.weight": true, "model.layers.0.q.weight": true, "lm_head.weight": true}
	has := func(n string) bool { return names[n] }
	for in, want := range map[string]string{
		"transformer.h.0.attn.c_attn.weight": "h.0.attn.c_attn.weight",
		"model.layers.0.q.weight":            "model.layers.0.q.weight",
		"layers.0.q.weight":                  "model.layers.0.q.weight",
		"lm_head.weight":                     "lm_head.weight",
	} {
		if got, ok := BaseTensorName(has, in); !ok || got != want {
			t.Errorf("BaseTensorName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := BaseTensorName(has, "h.1.attn.c_attn.weight"); ok {
		t.Error("found a tensor that does not exist")
	}
}

func TestMergeDoRA(t *testing.T) {
	for _, l := range []layout{llamaLayout(8, 12, 1, 20), gpt2Layout(6, 1, 20)} {
		t.Run(l.modelType, func(t *testing.T) {
			tmp := t.TempDir()
			baseDir, outDir := filepath.Join(tmp, "base"), filepath.Join(tmp, "merged")
			writeCheckpoint(t, baseDir, l, safetensors.F32, 1, 4)
			a := randomAdapter(l, 2, 4, 3)
			a.Config.UseDoRA = true
			mags := map[string][]float32{}
			for _, m := range l.targets {
				out := a.Shapes[peft.KeyB(m)][0]
				mag := make([]float32, out)
				for i := range mag {
					mag[i] = 0.5 + float32(i)
				}
				a.Tensors[peft.KeyMagnitude(m)], a.Shapes[peft.KeyMagnitude(m)] = mag, []int{out}
				mags[m] = mag
			}
			ws := []Weighted{{Name: "dora", Adapter: a, Weight: 1}}
			if _, err := Merge(context.Background(), baseDir, outDir, Options{Adapters: ws, SafeMerge: true, BlockElements: 20, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			base, merged := readAll(t, baseDir), readAll(t, outDir)
			for _, m := range l.targets {
				name := strings.TrimPrefix(m, "transformer.") + ".weight"
				w0, _ := base.Float32(name)
				w1, _ := merged.Float32(name)
				d := expectedDelta(a, m, 1, l.fifo)
				sa, sb := a.Shapes[peft.KeyA(m)], a.Shapes[peft.KeyB(m)]
				in, out := sa[1], sb[0]
				at := func(o, i int) int { // index of logical [o, i] in the stored layout
					if l.fifo {
						return i*out + o
					}
					return o*in + i
				}
				for o := 0; o < out; o++ {
					var ss float64
					for i := 0; i < in; i++ {
						x := float64(w0[at(o, i)]) + d[at(o, i)]
						ss += x * x
					}
					f := float64(mags[m][o]) / math.Sqrt(ss)
					for i := 0; i < in; i++ {
						want := f * (float64(w0[at(o, i)]) + d[at(o, i)])
						if got := float64(w1[at(o, i)]); math.Abs(got-want) > 1e-5 {
							t.Fatalf("%s[%d,%d] = %g, want %g", name, o, i, got, want)
						}
					}
				}
			}
			if _, err := Unmerge(context.Background(), outDir, filepath.Join(tmp, "back"), Options{Adapters: ws}); !errors.Is(err, ErrMismatch) {
				t.Fatalf("DoRA unmerge: %v, want a refusal", err)
			}
			delete(a.Tensors, peft.KeyMagnitude(l.targets[0]))
			if _, err := Merge(context.Background(), baseDir, filepath.Join(tmp, "m2"), Options{Adapters: ws}); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "lora_magnitude_vector") {
				t.Fatalf("missing magnitude: %v", err)
			}
		})
	}
}

func TestSafeMergeF16OverflowAndWorkers(t *testing.T) {
	tmp := t.TempDir()
	l := llamaLayout(8, 12, 1, 20)
	baseDir := filepath.Join(tmp, "base")
	writeCheckpoint(t, baseDir, l, safetensors.F16, 1, 3)
	a := randomAdapter(l, 2, 2, 1)
	// Identical results whatever the number of workers and block size.
	var first []byte
	for i, o := range []Options{{Workers: 1}, {Workers: 4, BlockElements: 7}} {
		o.Adapters, o.Logger = []Weighted{{Adapter: a, Weight: 1}}, quiet
		out := filepath.Join(tmp, fmt.Sprint("w", i))
		if _, err := Merge(context.Background(), baseDir, out, o); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, safetensors.SingleFileName))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatal("merged bytes depend on workers or block size")
		}
	}
	// 1e5 is finite in float32 but not in F16.
	big := a.Tensors[peft.KeyB("model.layers.0.self_attn.q_proj")]
	for i := range big {
		big[i] = 1e5
	}
	_, err := Merge(context.Background(), baseDir, filepath.Join(tmp, "o"), Options{Adapters: []Weighted{{Adapter: a, Weight: 1}}, SafeMerge: true, Logger: quiet})
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "F16") {
		t.Fatalf("F16 overflow: %v", err)
	}
}
