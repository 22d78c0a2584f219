package peft

// defaultTargetModules is PEFT's
// TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
// (src/peft/utils/constants.py) for the model types loraflow runs. PEFT
// has no entry for phi3: its LoraConfig then needs target_modules
// (tuners_utils.py, _prepare_adapter_config: "Please specify
// `target_modules` in `peft_config`").
var defaultTargetModules = map[string][]string{
	"gpt2":        {"c_attn"},
	"llama":       {"q_proj", "v_proj"},
	"mistral":     {"q_proj", "v_proj"},
	"qwen2":       {"q_proj", "v_proj"},
	"qwen3":       {"q_proj", "v_proj"},
	"gemma2":      {"q_proj", "v_proj"},
	"gemma3_text": {"q_proj", "v_proj"},
}

// DefaultTargetModules returns PEFT's default target_modules for a model
// type, and false where PEFT has none (the config must name them).
func DefaultTargetModules(modelType string) ([]string, bool) {
	t, ok := defaultTargetModules[modelType]
	return append([]string(nil), t...), ok
}
