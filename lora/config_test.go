package lora

import (
	"errors"
	"strings"
	"testing"
)

// base is a minimal config.json of the model type with extra fields.
func cfgJSON(modelType, extra string) string {
	s := `{"model_type":"` + modelType + `","vocab_size":64,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,` +
		`"num_key_value_heads":2,"intermediate_size":48,"max_position_embeddings":64`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

// TestConfigRefusals checks that every config field whose value changes the
// arithmetic in a way the engine does not implement is refused with a
// BadConfig error that names the field, and that an unknown model type
// lists the supported ones.
func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, raw, field string
	}{
		{"hidden_act", cfgJSON("llama", `"hidden_act":"gelu"`), "hidden_act"},
		{"mistral hidden_act", cfgJSON("mistral", `"hidden_act":"relu"`), "hidden_act"},
		{"gemma2 activation", cfgJSON("gemma2", `"hidden_activation":"gelu"`), "hidden_activation"},
		{"attention_dropout", cfgJSON("qwen2", `"attention_dropout":0.1`), "attention_dropout"},
		{"phi3 resid_pdrop", cfgJSON("phi3", `"resid_pdrop":0.1`), "resid_pdrop"},
		{"phi3 embd_pdrop", cfgJSON("phi3", `"embd_pdrop":0.1`), "embd_pdrop"},
		{"bidirectional", cfgJSON("gemma3_text", `"use_bidirectional_attention":true`), "use_bidirectional_attention"},
		{"gemma attention_bias", cfgJSON("gemma2", `"attention_bias":true`), "attention_bias"},
		{"rope type ntk", cfgJSON("llama", `"rope_scaling":{"rope_type":"ntk","factor":2.0}`), "rope_scaling"},
		{"rope type unknown", cfgJSON("qwen2", `"rope_scaling":{"type":"su","factor":2.0}`), "rope_scaling"},
		{"yarn mscale", cfgJSON("qwen3", `"rope_scaling":{"rope_type":"yarn","factor":4.0,"mscale":1.0}`), "rope_scaling.mscale"},
		{"yarn original", cfgJSON("qwen3", `"rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768}`), "rope_scaling.original_max_position_embeddings"},
		{"yarn truncate", cfgJSON("llama", `"rope_scaling":{"rope_type":"yarn","factor":4.0,"truncate":false}`), "rope_scaling.truncate"},
		{"llama3 bad factors", cfgJSON("llama", `"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":4.0,"high_freq_factor":1.0,"original_max_position_embeddings":8192}`), "rope_scaling"},
		{"longrope lengths", cfgJSON("phi3", `"original_max_position_embeddings":32,"rope_scaling":{"type":"longrope","short_factor":[1.0],"long_factor":[1.0]}`), "longrope"},
		{"longrope no original", cfgJSON("phi3", `"rope_scaling":{"type":"longrope","short_factor":[1,1,1,1],"long_factor":[1,1,1,1]}`), "original_max_position_embeddings"},
		{"partial_rotary_factor", cfgJSON("phi3", `"partial_rotary_factor":1.5`), "partial_rotary_factor"},
		{"layer_types value", cfgJSON("gemma3_text", `"layer_types":["sliding_attention","chunked_attention"]`), "layer_types[1]"},
		{"layer_types count", cfgJSON("gemma2", `"layer_types":["sliding_attention"]`), "layer_types"},
		{"sliding_window", cfgJSON("mistral", `"sliding_window":0`), "sliding_window"},
		{"gpt2 scale_attn_weights", `{"model_type":"gpt2","scale_attn_weights":false}`, "scale_attn_weights"},
		{"gpt2 inverse layer idx", `{"model_type":"gpt2","scale_attn_by_inverse_layer_idx":true}`, "scale_attn_by_inverse_layer_idx"},
		{"gpt2 upcast", `{"model_type":"gpt2","reorder_and_upcast_attn":true}`, "reorder_and_upcast_attn"},
		{"gpt2 cross attention", `{"model_type":"gpt2","add_cross_attention":true}`, "add_cross_attention"},
		{"gpt2 activation", `{"model_type":"gpt2","activation_function":"relu"}`, "activation_function"},
		{"non-number size", cfgJSON("llama", `"head_dim":"8"`), "head_dim"},
		{"fractional size", cfgJSON("llama", `"head_dim":8.5`), "head_dim"},
		{"non-bool", cfgJSON("llama", `"attention_bias":1`), "attention_bias"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseModelConfig([]byte(tc.raw))
			ie, ok := IsInputError(err)
			if !ok || ie.Kind != KindBadConfig {
				t.Fatalf("got %v, want a %s error", err, KindBadConfig)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %q", err, tc.field)
			}
		})
	}
	_, err := ParseModelConfig([]byte(cfgJSON("falcon", "")))
	var ie *InputError
	if !errors.As(err, &ie) || ie.Kind != KindUnknownModelType {
		t.Fatalf("falcon: %v", err)
	}
	for _, mt := range SupportedModelTypes {
		if !strings.Contains(err.Error(), mt) {
			t.Fatalf("%q does not list %s", err, mt)
		}
	}
}

// TestConfigFamilies parses each family's switches from its config.json.
func TestConfigFamilies(t *testing.T) {
	parse := func(raw string) ModelConfig {
		t.Helper()
		c, err := ParseModelConfig([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := parse(cfgJSON("qwen2", `"use_sliding_window":true,"sliding_window":8,"max_window_layers":1,"tie_word_embeddings":true`))
	if !c.QKVBias || c.AttentionBias || c.SlidingWindow != 8 || c.sliding(0) || !c.sliding(1) || !c.TieWordEmbeddings {
		t.Fatalf("qwen2 %+v", c)
	}
	c = parse(cfgJSON("qwen2", `"use_sliding_window":false,"sliding_window":8`))
	if c.SlidingWindow != 0 || c.sliding(1) {
		t.Fatalf("qwen2 without use_sliding_window: %+v", c)
	}
	c = parse(cfgJSON("qwen3", `"head_dim":16`))
	if !c.QKNorm || c.HeadDim != 16 || c.qDim() != 64 {
		t.Fatalf("qwen3 %+v", c)
	}
	c = parse(cfgJSON("mistral", `"sliding_window":null`))
	if c.SlidingWindow != 0 {
		t.Fatalf("mistral null window %+v", c)
	}
	c = parse(cfgJSON("mistral", `"sliding_window":16`))
	if !c.sliding(0) || !c.sliding(1) {
		t.Fatalf("mistral window %+v", c)
	}
	c = parse(cfgJSON("gemma2", ""))
	if !c.Gemma || c.AttnSoftcap != 50 || c.FinalSoftcap != 30 || c.QueryPreAttnScalar != 256 || !c.sliding(0) || c.sliding(1) || !c.TieWordEmbeddings {
		t.Fatalf("gemma2 %+v", c)
	}
	c = parse(cfgJSON("gemma2", `"final_logit_softcapping":null,"attn_logit_softcapping":null`))
	if c.AttnSoftcap != 0 || c.FinalSoftcap != 0 {
		t.Fatalf("gemma2 null caps %+v", c)
	}
	c = parse(cfgJSON("gemma3_text", `"num_hidden_layers":6,"sliding_window":4`))
	if !c.QKNorm || c.RopeLocalTheta != 1e4 || c.RopeTheta != 1e6 || !c.sliding(4) || c.sliding(5) {
		t.Fatalf("gemma3 %+v", c)
	}
	c = parse(cfgJSON("phi3", `"partial_rotary_factor":0.5,"sliding_window":7`))
	if !c.Fused || c.RotaryDim != 4 || c.SlidingWindow != 7 || c.NormEps != 1e-5 {
		t.Fatalf("phi3 %+v", c)
	}
	// Round trip through MarshalHF keeps every switch.
	for _, raw := range []string{
		cfgJSON("qwen2", `"use_sliding_window":true,"sliding_window":8,"max_window_layers":1`),
		cfgJSON("qwen3", `"head_dim":16,"attention_bias":true`),
		cfgJSON("mistral", `"sliding_window":16`),
		cfgJSON("gemma2", ""),
		cfgJSON("gemma3_text", `"sliding_window":4,"rope_scaling":{"rope_type":"linear","factor":8.0}`),
		cfgJSON("phi3", `"partial_rotary_factor":0.5,"original_max_position_embeddings":32,"rope_scaling":{"type":"longrope","short_factor":[1,1],"long_factor":[2,3]}`),
		cfgJSON("llama", `"rope_scaling":{"rope_type":"yarn","factor":4.0,"beta_fast":16.0}`),
	} {
		c := parse(raw)
		out, err := c.MarshalHF()
		if err != nil {
			t.Fatal(err)
		}
		c2 := parse(string(out))
		if !equalConfig(c, c2) {
			t.Fatalf("round trip of %s:\n%+v\n%+v", raw, c, c2)
		}
	}
}
