// Package merge folds LoRA adapters into a base checkpoint,
// W' = W0 + Σ wᵢ·sᵢ·Bᵢ·Aᵢ (transposed for fan_in_fan_out layers such as
// GPT-2's Conv1D), and takes them out again (Unmerge, W0 = W' − Σ …).
//
// The merge streams: every file of the base folder (shards, index,
// config.json, tokenizer files, ...) is first copied as is, with the
// kernel's copy_file_range where the file system offers it, so every tensor
// the adapters do not touch, and every safetensors header, stays
// byte-identical. Then each adapted tensor is rewritten in place, in blocks
// of rows read with pread from the base file, decoded from its dtype (F32,
// F16 or BF16) to float32, updated with a float32 GEMM, encoded back to the
// same dtype (round to nearest even) and written with pwrite. Memory is
// bounded by one block and the adapters, whatever the size of the model; the
// base is never loaded whole. With SafeMerge the merged values are checked for
// NaN and Inf before anything is written. The output folder is built in a
// temporary sibling and renamed into place, so a crash never leaves a
// half-merged model at the destination.
//
// A DoRA adapter (use_dora, with "<module>.lora_magnitude_vector") merges
// as PEFT does: W' = m·(W0+ΔW)/‖W0+ΔW‖, the norm taken per output over the
// inputs (per column of a fan_in_fan_out weight, in a first pass). It must be
// merged alone and with weight 1, and cannot be unmerged (W' no longer holds
// ‖W0+ΔW‖).
//
// Adapters are matched to base tensors by module name: PEFT's
// "base_model.model.<module>.lora_A.weight" adapts "<module>.weight", with
// a leading "transformer." or "model." added or removed when only that form
// exists (GPT-2 checkpoints are saved both ways). A missing tensor or a shape
// that does not fit is an error that names the tensor and matches
// ErrMismatch.
//
// EquivalenceWith proves a merge: it runs base+adapter and the merged model
// on probe sequences and records the largest absolute logit difference and
// the SHA-256 of the probe set.
package merge
