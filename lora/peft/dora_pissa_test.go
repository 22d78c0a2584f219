package peft

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidateAcceptsDoRAAndDataDrivenInits: use_dora and the PiSSA/OLoRA
// initialisations are valid configs and keep their JSON form.
func TestValidateAcceptsDoRAAndDataDrivenInits(t *testing.T) {
	for _, init := range []string{"pissa", "pissa_niter_4", "olora", "gaussian"} {
		c := DefaultConfig("q_proj")
		c.UseDoRA, c.InitLoraWeights = true, InitLoraWeights(init)
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", init, err)
		}
		b, err := MarshalConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"init_lora_weights": "`+init+`"`) || !strings.Contains(string(b), `"use_dora": true`) {
			t.Fatalf("%s: %s", init, b)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil || back.InitLoraWeights != c.InitLoraWeights || !back.UseDoRA {
			t.Fatalf("%s: round trip %v %+v", init, err, back)
		}
	}
	if k := KeyMagnitude("model.layers.0.self_attn.q_proj"); k != "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector" {
		t.Fatalf("magnitude key %q", k)
	}
	if m, kind, ok := ParseKey(KeyMagnitude("transformer.h.0.attn.c_attn")); !ok || m != "transformer.h.0.attn.c_attn" || kind != "lora_magnitude_vector" {
		t.Fatalf("ParseKey: %q %q %v", m, kind, ok)
	}
}
