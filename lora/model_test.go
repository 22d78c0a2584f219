package lora

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

func TestSaveLoadModel(t *testing.T) {
	for i, cfg := range append([]ModelConfig{tinyLlamaConfig(), tinyGPT2Config()}, tinyFamilyConfigs()...) {
		t.Run(fmt.Sprintf("%s-%d", cfg.ModelType, i), func(t *testing.T) {
			m := newTiny(t, cfg, 3)
			dir := t.TempDir()
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			m2, err := LoadModel(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m2.Config(), m.Config()) {
				t.Fatalf("config %+v != %+v", m2.Config(), m.Config())
			}
			toks := []int{1, 2, 3, 4, 5}
			a, _ := Logits(context.Background(), m, nil, toks)
			b, _ := Logits(context.Background(), m2, nil, toks)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("logit %d differs after save/load: %v vs %v", i, a[i], b[i])
				}
			}
		})
	}
}

// TestLogitsMatchTrainingForward checks the KV-cache inference path against
// the batched training forward pass, and Generate against step-by-step argmax.
func TestLogitsMatchTrainingForward(t *testing.T) {
	for i, cfg := range append([]ModelConfig{tinyLlamaConfig(), tinyGPT2Config()}, tinyFamilyConfigs()...) {
		if rs := cfg.RopeScaling; rs != nil && rs.Type == "longrope" {
			// longrope switches tables past the original context; the
			// KV cache then keeps keys rotated by the short factors, as
			// transformers' cache does, and differs from a full recompute.
			rs2 := *rs
			rs2.OriginalMaxPositions, cfg.OriginalMaxPositions = 16, 16
			cfg.RopeScaling = &rs2
		}
		t.Run(fmt.Sprintf("%s-%d", cfg.ModelType, i), func(t *testing.T) {
			m := newTiny(t, cfg, 5)
			for _, p := range m.net.params {
				for j := range p.w {
					p.w[j] *= 30
				}
			}
			toks := []int{3, 1, 4, 1, 5, 9, 2, 6}
			lg, err := Logits(context.Background(), m, nil, toks)
			if err != nil {
				t.Fatal(err)
			}
			V := cfg.VocabSize
			var want float64
			for i := 0; i+1 < len(toks); i++ {
				row := lg[i*V : (i+1)*V]
				mx := row[0]
				for _, v := range row {
					mx = max(mx, v)
				}
				var s float64
				for _, v := range row {
					s += math.Exp(float64(v - mx))
				}
				want += float64(mx) + math.Log(s) - float64(row[toks[i+1]])
			}
			want /= float64(len(toks) - 1)
			ev, err := Evaluate(context.Background(), m, nil, []Sequence{{Tokens: toks}}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(ev.Loss-want) > 1e-4 {
				t.Fatalf("loss from Logits %.6f, from Evaluate %.6f", want, ev.Loss)
			}
			// Generate (greedy, KV cache) equals recomputing the full prefix.
			gen, err := Generate(context.Background(), m, nil, toks[:3], GenerateOptions{MaxTokens: 6})
			if err != nil {
				t.Fatal(err)
			}
			seq := append([]int(nil), toks[:3]...)
			for i := 0; i < 6; i++ {
				l, _ := Logits(context.Background(), m, nil, seq)
				last := l[(len(seq)-1)*V:]
				best := 0
				for j, v := range last {
					if v > last[best] {
						best = j
					}
				}
				if gen[i] != best {
					t.Fatalf("token %d: generate %d, full recompute %d", i, gen[i], best)
				}
				seq = append(seq, best)
			}
		})
	}
}

// TestZeroInitLogitsEqualBase: with B = 0 the adapted model's logits equal the base model's exactly.
func TestZeroInitLogitsEqualBase(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyLlamaConfig(), tinyGPT2Config()} {
		m := newTiny(t, cfg, 6)
		pc := peft.DefaultConfig()
		pc.TargetModules = peft.TargetModules{AllLinear: true}
		n := m.net.clone()
		tr, err := initLoRA(n, pc, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		a := exportAdapter(pc, tr, cfg.ModelType == "gpt2")
		nonzeroA := false
		for _, k := range a.Names() {
			if strings.HasSuffix(k, "lora_A.weight") {
				for _, v := range a.Tensors[k] {
					nonzeroA = nonzeroA || v != 0
				}
			}
		}
		if !nonzeroA {
			t.Fatal("lora_A is all zero")
		}
		toks := []int{7, 8, 9, 10, 11}
		base, _ := Logits(context.Background(), m, nil, toks)
		ad, err := Logits(context.Background(), m, a, toks)
		if err != nil {
			t.Fatal(err)
		}
		for i := range base {
			if base[i] != ad[i] {
				t.Fatalf("%s: logit %d: base %v, adapted %v", cfg.ModelType, i, base[i], ad[i])
			}
		}
	}
}

func TestLoadModelErrors(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 3)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	var ie *InputError
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"bert","hidden_size":16}`), 0o644)
	if _, err := LoadModel(dir); !errors.As(err, &ie) || ie.Kind != KindUnknownModelType {
		t.Fatalf("unknown model_type: %v", err)
	}
	c := tinyLlamaConfig()
	c.Layers = 3
	raw, _ := c.MarshalHF()
	os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644)
	if _, err := LoadModel(dir); !errors.As(err, &ie) || ie.Kind != KindMissingTensor || !strings.Contains(err.Error(), "model.layers.2.input_layernorm.weight") {
		t.Fatalf("missing tensor: %v", err)
	}
}

// TestRopeScalingLlama3 parses Llama 3.2's rope_scaling and checks the
// adjusted frequencies (reference values from the Hugging Face formula).
func TestRopeScalingLlama3(t *testing.T) {
	raw := `{"model_type":"llama","vocab_size":128256,"hidden_size":2048,"num_hidden_layers":16,"num_attention_heads":32,
	  "num_key_value_heads":8,"head_dim":64,"intermediate_size":8192,"max_position_embeddings":131072,"rms_norm_eps":1e-5,
	  "rope_theta":500000.0,"tie_word_embeddings":true,"bos_token_id":128000,"eos_token_id":[128001,128008,128009],
	  "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}`
	c, err := ParseModelConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if c.KVHeads != 8 || c.HeadDim != 64 || !c.TieWordEmbeddings || c.EosTokenID != 128001 || c.RopeScaling == nil {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct {
		i    int
		want float64
	}{{0, 1}, {14, 0.0032114459947525913}, {15, 0.001290547928209264}, {16, 0.00042955679655936815}, {31, 9.418306725434909e-08}} {
		got := c.RopeScaling.scale(1 / math.Pow(500000, float64(2*tc.i)/64))
		if math.Abs(got-tc.want) > 1e-12*math.Max(1, tc.want) && math.Abs(got-tc.want)/tc.want > 1e-9 {
			t.Fatalf("inv_freq[%d] = %v, want %v", tc.i, got, tc.want)
		}
	}
	raw2, _ := c.MarshalHF()
	c2, err := ParseModelConfig(raw2)
	if err != nil || !reflect.DeepEqual(*c2.RopeScaling, *c.RopeScaling) {
		t.Fatalf("round trip: %v %+v", err, c2.RopeScaling)
	}
	if _, err := ParseModelConfig([]byte(`{"model_type":"llama","vocab_size":8,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"rope_scaling":{"type":"ntk","factor":2}}`)); err == nil {
		t.Fatal("ntk accepted")
	}
}

// TestLoadHalfPrecisionSharded loads a checkpoint stored as BF16 and F16 in
// two shards with an index, as Hugging Face saves larger models.
func TestLoadHalfPrecisionSharded(t *testing.T) {
	m := newTiny(t, tinyLlamaConfig(), 3)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "model.safetensors"))
	shards := [2][]safetensors.Tensor{}
	weightMap := map[string]string{}
	for i, name := range m.TensorNames() {
		w, shape, _ := m.Tensor(name)
		dt := safetensors.DType("BF16")
		if i%2 == 1 {
			dt = safetensors.DType("F16")
		}
		b, err := safetensors.EncodeFloat32(dt, w)
		if err != nil {
			t.Fatal(err)
		}
		shards[i%2] = append(shards[i%2], safetensors.Tensor{Name: name, DType: dt, Shape: shape, Data: b})
		weightMap[name] = fmt.Sprintf("model-%05d-of-00002.safetensors", i%2+1)
	}
	for i, ts := range shards {
		if err := safetensors.WriteFile(filepath.Join(dir, fmt.Sprintf("model-%05d-of-00002.safetensors", i+1)), ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644)
	m2, err := LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	toks := []int{1, 2, 3, 4}
	a, _ := Logits(context.Background(), m, nil, toks)
	b, _ := Logits(context.Background(), m2, nil, toks)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 0.02 {
			t.Fatalf("logit %d: f32 %v, half %v", i, a[i], b[i])
		}
	}
}
