package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func llamaModules(layers int) []string {
	var out []string
	for l := 0; l < layers; l++ {
		for _, p := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
			out = append(out, fmt.Sprintf("model.layers.%d.%s", l, p))
		}
	}
	return append(out, "lm_head")
}

func gpt2Modules(layers int) []string {
	var out []string
	for l := 0; l < layers; l++ {
		for _, p := range []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"} {
			out = append(out, fmt.Sprintf("transformer.h.%d.%s", l, p))
		}
	}
	return append(out, "lm_head")
}

func selected(c Config, modules []string) []string {
	var out []string
	for _, m := range modules {
		if c.Targets(m, m == "lm_head") {
			out = append(out, KeyA(m), KeyB(m))
		}
	}
	return out
}

// TestPEFTKeyNamingLlama checks the adapter keys PEFT produces for a Llama
// model with target_modules=["q_proj","v_proj"], key by key.
func TestPEFTKeyNamingLlama(t *testing.T) {
	c := DefaultConfig("q_proj", "v_proj")
	got := selected(c, llamaModules(2))
	want := []string{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
		"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
		"base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
		"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
		"base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
		"base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys:\n got %q\nwant %q", got, want)
	}
	// all-linear takes every linear layer but the head.
	c.TargetModules = TargetModules{AllLinear: true}
	if n := len(selected(c, llamaModules(2))); n != 2*14 {
		t.Fatalf("all-linear selected %d keys, want 28", n)
	}
	// layers_to_transform restricts suffix matches to those layers.
	c = DefaultConfig("q_proj")
	c.LayersToTransform = IntList{1}
	if got := selected(c, llamaModules(2)); !reflect.DeepEqual(got, []string{
		"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"}) {
		t.Fatalf("layers_to_transform: %q", got)
	}
	// a regex is a full match.
	c = Config{TargetModules: TargetModules{Regex: `.*\.layers\.0\.mlp\.(up|down)_proj`}}
	if got := selected(c, llamaModules(2)); len(got) != 4 || !strings.Contains(got[0], "layers.0.mlp.up_proj") {
		t.Fatalf("regex: %q", got)
	}
	c = Config{TargetModules: TargetModules{Regex: `q_proj`}}
	if got := selected(c, llamaModules(2)); len(got) != 0 {
		t.Fatalf("regex must match the whole name, got %q", got)
	}
}

// TestPEFTKeyNamingGPT2 checks GPT-2's keys (transformer.h.N.attn.c_attn).
func TestPEFTKeyNamingGPT2(t *testing.T) {
	c := DefaultConfig("c_attn")
	c.FanInFanOut = true
	got := selected(c, gpt2Modules(2))
	want := []string{
		"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
		"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
		"base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
		"base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys:\n got %q\nwant %q", got, want)
	}
	// "c_proj" matches both attn.c_proj and mlp.c_proj as a suffix.
	c = DefaultConfig("c_proj")
	if n := len(selected(c, gpt2Modules(2))); n != 8 {
		t.Fatalf("c_proj selected %d keys, want 8", n)
	}
	if k := KeyBias("transformer.h.0.attn.c_attn", true); k != "base_model.model.transformer.h.0.attn.c_attn.base_layer.bias" {
		t.Fatalf("KeyBias adapted = %q", k)
	}
	if k := KeyBias("transformer.h.0.mlp.c_fc", false); k != "base_model.model.transformer.h.0.mlp.c_fc.bias" {
		t.Fatalf("KeyBias = %q", k)
	}
	if m, _, _ := ParseKey("base_model.model.transformer.h.0.attn.c_attn.base_layer.bias"); ParamName(m) != "transformer.h.0.attn.c_attn.bias" {
		t.Fatalf("ParamName(%q) = %q", m, ParamName(m))
	}
	if idx, ok := c.LayerIndex("transformer.h.11.mlp.c_fc"); !ok || idx != 11 {
		t.Fatalf("LayerIndex = %d, %v", idx, ok)
	}
	m, kind, ok := ParseKey("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight")
	if !ok || m != "transformer.h.0.attn.c_attn" || kind != "lora_B" {
		t.Fatalf("ParseKey = %q %q %v", m, kind, ok)
	}
}

func TestPyFloat(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 0.05: "0.05", 0.1: "0.1", 1e-05: "1e-05", 0.5: "0.5"} {
		if got := pyFloat(v); got != want {
			t.Fatalf("pyFloat(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestScale(t *testing.T) {
	c := Config{R: 16, LoraAlpha: 32}
	if s := c.Scale("model.layers.0.self_attn.q_proj"); s != 2 {
		t.Fatalf("alpha/r = %v", s)
	}
	c.UseRSLoRA = true
	if s := c.Scale("x.q_proj"); math.Abs(s-8) > 1e-12 {
		t.Fatalf("alpha/sqrt(r) = %v", s)
	}
	c.UseRSLoRA = false
	c.RankPattern = map[string]int{"v_proj": 4}
	c.AlphaPattern = map[string]float64{`model\.layers\.1\.self_attn\.q_proj`: 8}
	if s := c.Scale("model.layers.0.self_attn.v_proj"); s != 8 {
		t.Fatalf("rank_pattern scale = %v", s)
	}
	if r := c.Rank("model.layers.0.self_attn.v_proj"); r != 4 {
		t.Fatalf("rank = %d", r)
	}
	if s := c.Scale("model.layers.1.self_attn.q_proj"); s != 0.5 {
		t.Fatalf("alpha_pattern scale = %v", s)
	}
	if s := c.Scale("model.layers.0.self_attn.q_proj"); s != 2 {
		t.Fatalf("unpatterned scale = %v", s)
	}
	// "proj" must not match "q_proj" (suffix after a dot only).
	c.RankPattern = map[string]int{"proj": 2}
	if r := c.Rank("model.layers.0.self_attn.q_proj"); r != 16 {
		t.Fatalf("rank pattern matched inside a name: %d", r)
	}
}

func TestConfigJSON(t *testing.T) {
	in := `{"peft_type":"LORA","task_type":"CAUSAL_LM","r":8,"lora_alpha":16,"lora_dropout":0.05,
	  "target_modules":["q_proj","v_proj"],"bias":"none","fan_in_fan_out":false,"use_rslora":false,
	  "use_dora":false,"init_lora_weights":true,"rank_pattern":{},"alpha_pattern":{},
	  "layers_to_transform":3,"layers_pattern":"layers","modules_to_save":null,"some_new_field":1}`
	var c Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.R != 8 || c.LoraAlpha != 16 || !reflect.DeepEqual(c.TargetModules.List, []string{"q_proj", "v_proj"}) ||
		c.InitLoraWeights != "true" || !reflect.DeepEqual([]int(c.LayersToTransform), []int{3}) ||
		!reflect.DeepEqual([]string(c.LayersPattern), []string{"layers"}) {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct{ json, want string }{{`"all-linear"`, `"all-linear"`}, {`".*q_proj"`, `".*q_proj"`}, {`["a"]`, `["a"]`}} {
		var tm TargetModules
		if err := json.Unmarshal([]byte(tc.json), &tm); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(tm)
		if string(b) != tc.want {
			t.Fatalf("target_modules %s → %s", tc.json, b)
		}
	}
	var iw InitLoraWeights
	if err := json.Unmarshal([]byte(`"gaussian"`), &iw); err != nil || iw != "gaussian" {
		t.Fatalf("gaussian: %v %q", err, iw)
	}
	b, err := MarshalConfig(DefaultConfig("q_proj"))
	if err != nil {
		t.Fatal(err)
	}
	if b[len(b)-1] != '}' || !bytes.HasPrefix(b, []byte("{\n  \"alora_invocation_tokens\": null,\n  \"alpha_pattern\": {},\n  \"arrow_config\": null,\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": \"\",")) {
		t.Fatalf("config JSON is not sorted like json.dumps(indent=2, sort_keys=True):\n%s", b)
	}
	for _, want := range []string{`"peft_type": "LORA"`, `"init_lora_weights": true`, `"rank_pattern": {}`, `"target_modules": [`, `"lora_dropout": 0.0,`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Fatalf("config JSON lacks %s:\n%s", want, b)
		}
	}
	bad := DefaultConfig("q_proj")
	bad.Bias = "some"
	if bad.Validate() == nil {
		t.Fatal("bias \"some\" accepted")
	}
}

func TestAdapterRoundTrip(t *testing.T) {
	c := DefaultConfig("c_attn")
	c.R, c.LoraAlpha, c.FanInFanOut = 2, 4, true
	a := &Adapter{Config: c, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for l := 0; l < 2; l++ {
		m := fmt.Sprintf("transformer.h.%d.attn.c_attn", l)
		A := make([]float32, 2*4)
		B := make([]float32, 12*2)
		for i := range A {
			A[i] = float32(i) * 0.25
		}
		for i := range B {
			B[i] = -float32(i) / 3
		}
		a.Tensors[KeyA(m)], a.Shapes[KeyA(m)] = A, []int{2, 4}
		a.Tensors[KeyB(m)], a.Shapes[KeyB(m)] = B, []int{12, 2}
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Tensors, b.Tensors) || !reflect.DeepEqual(a.Shapes, b.Shapes) {
		t.Fatal("tensors differ after round trip")
	}
	if !reflect.DeepEqual(b.Config.TargetModules.List, []string{"c_attn"}) || !b.Config.FanInFanOut || b.Config.R != 2 {
		t.Fatalf("config after round trip: %+v", b.Config)
	}
	if got := b.Modules(); !reflect.DeepEqual(got, []string{"transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"}) {
		t.Fatalf("modules %q", got)
	}
	// Saving again gives identical bytes.
	dir2 := filepath.Join(t.TempDir(), "again")
	if err := b.Save(dir2); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ConfigFile, WeightsFile} {
		x, _ := os.ReadFile(filepath.Join(dir, f))
		y, _ := os.ReadFile(filepath.Join(dir2, f))
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs after a second save", f)
		}
	}
	// A lora_A without its lora_B is refused.
	delete(a.Tensors, KeyB("transformer.h.0.attn.c_attn"))
	if err := a.Save(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no lora_B") {
		t.Fatalf("unpaired lora_A: %v", err)
	}
}
