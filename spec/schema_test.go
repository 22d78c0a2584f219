package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestSchemaMatchesGoTypes checks schema.json against the Go types: every
// schema property is a field (by its JSON name) and every field a schema
// property, and each "default" the schema states is the value applyDefaults
// fills into a spec that leaves the field unset.
func TestSchemaMatchesGoTypes(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(SchemaJSON(), &schema); err != nil {
		t.Fatal(err)
	}
	s, err := Parse([]byte(minimal), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	var defaulted map[string]any
	if err := json.Unmarshal(b, &defaulted); err != nil {
		t.Fatal(err)
	}
	defaults := 0
	var walk func(path string, node map[string]any, typ reflect.Type, values map[string]any)
	walk = func(path string, node map[string]any, typ reflect.Type, values map[string]any) {
		props, _ := node["properties"].(map[string]any)
		fields := map[string]reflect.StructField{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s%s has no JSON name", path, f.Name)
				continue
			}
			fields[name] = f
			if _, ok := props[name]; !ok {
				t.Errorf("field %s%s (%s) is not in schema.json", path, name, f.Name)
			}
		}
		for name, raw := range props {
			p := raw.(map[string]any)
			f, ok := fields[name]
			if !ok {
				t.Errorf("schema property %s%s has no Go field", path, name)
				continue
			}
			if want, ok := p["default"]; ok {
				defaults++
				if got := values[name]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s%s: schema default %v, applyDefaults gives %v", path, name, want, got)
				}
			}
			if p["type"] == "object" && f.Type.Kind() == reflect.Struct {
				sub, _ := values[name].(map[string]any)
				walk(path+name+".", p, f.Type, sub)
			}
		}
	}
	walk("", schema, reflect.TypeFor[Spec](), defaulted)
	if defaults == 0 {
		t.Fatal("no defaults checked")
	}
}

// TestSpecPEFTAndTrainConfig checks the typed mapping: YAML lists, regexes
// and booleans become PEFT's types without a JSON round trip, PEFT's default
// targets fill an unset target_modules, and the JSON the workflow carries
// decodes back to the same spec.
func TestSpecPEFTAndTrainConfig(t *testing.T) {
	s, err := Parse([]byte(minimal+"lora:\n  r: 4\n  target_modules: [q_proj, k_proj]\n  init_lora_weights: gaussian\n  layers_to_transform: [0]\ntraining:\n  steps: 3\n"), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.PEFT("llama")
	if err != nil {
		t.Fatal(err)
	}
	if c.R != 4 || c.LoraAlpha != 8 || c.InitLoraWeights != "gaussian" || !reflect.DeepEqual(c.TargetModules.List, []string{"q_proj", "k_proj"}) ||
		c.PeftType != "LORA" || c.TaskType != "CAUSAL_LM" || len(c.LayersToTransform) != 1 {
		t.Fatalf("PEFT() = %+v", c)
	}
	if tc := s.TrainConfig("/ck"); tc.Steps != 3 || tc.BatchSize != 8 || tc.Schedule != "cosine" || tc.CheckpointDir != "/ck" || tc.CheckpointEvery != 25 {
		t.Fatalf("TrainConfig() = %+v", tc)
	}
	b, _ := json.Marshal(s)
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil || back.Digest() != s.Digest() || !reflect.DeepEqual(back.LoRA, s.LoRA) {
		t.Fatalf("JSON round trip: %v\n%+v\n%+v", err, back.LoRA, s.LoRA)
	}

	d, _ := Parse([]byte(minimal+"lora:\n  target_modules: all-linear\n  init_lora_weights: false\n"), "s.yaml")
	if c, err := d.PEFT("gpt2"); err != nil || !c.TargetModules.AllLinear || c.InitLoraWeights != "false" {
		t.Fatalf("all-linear: %+v %v", c, err)
	}
	u, _ := Parse([]byte(minimal), "s.yaml")
	if c, _ := u.PEFT("gpt2"); !reflect.DeepEqual(c.TargetModules.List, []string{"c_attn"}) || c.InitLoraWeights != "true" {
		t.Fatalf("defaults: %+v", c)
	}
	if b, _ := json.Marshal(u.LoRA); strings.Contains(string(b), "target_modules") || !strings.Contains(string(b), `"init_lora_weights":true`) {
		t.Fatalf("unset target_modules or init written differently: %s", b)
	}
	bad, _ := Parse([]byte(minimal+"lora:\n  target_modules: \"(\"\n"), "s.yaml")
	if _, err := bad.PEFT("llama"); err == nil || !strings.Contains(err.Error(), "target_modules") {
		t.Fatalf("bad regex: %v", err)
	}
}
