package peft

import (
	"strings"
	"testing"
)

// The refusals of PEFT's LoraConfig.__post_init__ (peft/tuners/lora/config.py):
//
//	if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
//	    raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a str.")
//	if isinstance(self.target_modules, str) and self.layers_pattern is not None:
//	    raise ValueError("`layers_pattern` cannot be used when `target_modules` is a str.")
//	if self.layers_pattern and self.layers_to_transform is None:
//	    raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
func TestValidateRefusesWhatLoraConfigRefuses(t *testing.T) {
	regex := TargetModules{Regex: `.*\.(q_proj|v_proj)`}
	all := TargetModules{AllLinear: true}
	list := TargetModules{List: []string{"q_proj"}}
	for _, tc := range []struct {
		name    string
		c       Config
		refused string // "" when PEFT accepts it
	}{
		{"regex with layers_to_transform", Config{TargetModules: regex, LayersToTransform: IntList{0}}, "layers_to_transform cannot be used"},
		{"all-linear with layers_to_transform", Config{TargetModules: all, LayersToTransform: IntList{1}}, "layers_to_transform cannot be used"},
		{"regex with layers_pattern", Config{TargetModules: regex, LayersPattern: StringList{"layers"}}, "layers_pattern cannot be used"},
		{"layers_pattern alone", Config{TargetModules: list, LayersPattern: StringList{"layers"}}, "layers_to_transform is not"},
		{"list with both", Config{TargetModules: list, LayersToTransform: IntList{0}, LayersPattern: StringList{"layers"}}, ""},
		{"list with layers_to_transform", Config{TargetModules: list, LayersToTransform: IntList{0}}, ""},
		{"regex alone", Config{TargetModules: regex}, ""},
	} {
		err := tc.c.Validate()
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: PEFT accepts it, Validate: %v", tc.name, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: PEFT refuses it, Validate: %v (want %q)", tc.name, err, tc.refused)
		}
	}
}

// check_target_module_exists (peft/tuners/tuners_utils.py) never adapts a
// module of modules_to_save or one inside it:
//
//	if any(re.match(rf"(^|.*\.){m}($|\..*)", key) for m in modules_to_save):
//	    return _ExcludedModule()
func TestModulesToSaveAreNeverTargets(t *testing.T) {
	c := DefaultConfig("q_proj", "score")
	c.ModulesToSave = []string{"score", "model.layers.1.self_attn"}
	for module, want := range map[string]bool{
		"model.layers.0.self_attn.q_proj":  true,
		"model.layers.1.self_attn.q_proj":  false, // inside a saved module
		"score":                            false,
		"model.score":                      false,
		"model.layers.0.self_attn.score":   false,
		"model.layers.10.self_attn.q_proj": true, // "layers.1" must not match "layers.10"
	} {
		if got := c.Targets(module, false); got != want {
			t.Errorf("Targets(%q) = %v, want %v", module, got, want)
		}
	}
	all := Config{TargetModules: TargetModules{AllLinear: true}, ModulesToSave: []string{"lm_head", "mlp"}}
	if all.Targets("model.layers.0.mlp.down_proj", false) {
		t.Error("all-linear adapted a linear layer inside modules_to_save's mlp")
	}
}
