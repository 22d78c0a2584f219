// Package peft reads and writes LoRA adapters in the folder format of Hugging
// Face PEFT: adapter_config.json (PEFT's LoraConfig field names) and
// adapter_model.safetensors, whose keys are "base_model.model.<module>.lora_A.weight"
// with shape [r, in] and "base_model.model.<module>.lora_B.weight" with shape
// [out, r]; the update of a module's weight is ΔW = scale · B·A in [out, in]
// (transposed for GPT-2's Conv1D layers, fan_in_fan_out).
//
// Config also carries PEFT's module-selection rules (target_modules as a list
// with suffix match, a regular expression or "all-linear"; layers_to_transform;
// rank_pattern and alpha_pattern) so that the engine selects the same modules
// and scales that PEFT would.
package peft
