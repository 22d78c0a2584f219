package peft

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// peftLoraConfigDefaults is what PEFT writes to adapter_config.json for a
// LoraConfig left at its defaults: every dataclass field of LoraConfig in
// huggingface/peft src/peft/tuners/lora/config.py (commit 5d602fd, the
// field(default=...) of each), minus runtime_config (LoraConfig.to_dict
// pops it), plus PeftConfigMixin's and PeftConfig's fields from
// src/peft/config.py (task_type, peft_type, auto_mapping, peft_version,
// base_model_name_or_path, revision, inference_mode). peft_version is
// filled by PEFT at save time and by loraflow only when known; r, lora_alpha,
// target_modules, task_type and base_model_name_or_path are given below.
var peftLoraConfigDefaults = map[string]any{
	"alora_invocation_tokens": nil, "alpha_pattern": map[string]any{}, "arrow_config": nil, "auto_mapping": nil,
	"bias": "none", "corda_config": nil, "ensure_weight_tying": false, "eva_config": nil, "exclude_modules": nil,
	"fan_in_fan_out": false, "inference_mode": false, "init_lora_weights": true, "kasa_config": nil,
	"layer_replication": nil, "layers_pattern": nil, "layers_to_transform": nil, "loftq_config": map[string]any{},
	"lora_alpha": 8.0, "lora_bias": false, "lora_dropout": 0.0, "lora_ga_config": nil, "megatron_config": nil,
	"megatron_core": "megatron.core", "modules_to_save": nil, "monteclora_config": nil, "peft_type": "LORA",
	"qalora_group_size": 16.0, "r": 8.0, "rank_pattern": map[string]any{}, "revision": nil,
	"target_modules": []any{"q_proj"}, "target_parameters": nil, "task_type": "CAUSAL_LM",
	"trainable_token_indices": nil, "use_bdlora": nil, "use_dora": false, "use_qalora": false, "use_rslora": false,
	"velora_config": nil, "base_model_name_or_path": "",
}

func TestConfigWritesEveryPEFTField(t *testing.T) {
	b, err := MarshalConfig(DefaultConfig("q_proj"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range peftLoraConfigDefaults {
		v, ok := got[k]
		if !ok {
			t.Errorf("adapter_config.json lacks %s", k)
			continue
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %#v, PEFT's default is %#v", k, v, want)
		}
	}
	for k := range got {
		if _, ok := peftLoraConfigDefaults[k]; !ok {
			t.Errorf("adapter_config.json has %s, which PEFT's LoraConfig does not", k)
		}
	}
	// What loraflow writes it reads back and writes again unchanged.
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("own defaults refused: %v", err)
	}
	b2, _ := MarshalConfig(c)
	if string(b2) != string(b) {
		t.Errorf("round trip changed the config:\n%s\n%s", b, b2)
	}
}

// A feature loraflow does not compute is refused by name rather than
// silently dropped (each is a LoRA variant or extra tensor in PEFT's
// LoraConfig: lora_bias adds a bias to lora_B, layer_replication duplicates
// layers, trainable_token_indices trains embedding rows, use_qalora pools
// the input, ...).
func TestConfigRefusesUnsupportedPEFTFeatures(t *testing.T) {
	for field, value := range map[string]string{
		"lora_bias": "true", "use_qalora": "true", "layer_replication": "[[0,4],[2,5]]",
		"trainable_token_indices": "[1,2]", "target_parameters": `["experts.down_proj"]`,
		"alora_invocation_tokens": "[5]", "kasa_config": "{}", "arrow_config": `{"top_k":3}`,
	} {
		in := `{"peft_type":"LORA","r":8,"lora_alpha":8,"target_modules":["q_proj"],"` + field + `":` + value + `}`
		var c Config
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s = %s: err %v", field, value, err)
		}
	}
	// Initialisation-only configs do not change the forward pass.
	in := `{"peft_type":"LORA","r":8,"lora_alpha":8,"target_modules":["q_proj"],"init_lora_weights":"eva","eva_config":{"rho":2.0},"loftq_config":{}}`
	var c Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("eva_config refused: %v", err)
	}
}
