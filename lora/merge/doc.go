// Package merge folds LoRA adapters into a base checkpoint,
// W' = W0 + Σ wᵢ·sᵢ·Bᵢ·Aᵢ (transposed for fan_in_fan_out layers such as
// GPT-2's Conv1D), and takes them out again (Unmerge, W0 = W' − Σ …).
//
// The merge streams. Every file of the base folder that no adapter touches
// (config.json, tokenizer files, the index, untouched shards, ...) is copied
// as is, with the kernel's copy_file_range where the file system offers it.
// A shard holding adapted tensors is written in one pass: the byte ranges
// between those tensors (the header and every other tensor) are copied by
// the kernel, so they stay byte-identical, while each adapted tensor is
// computed by one of a few workers in blocks of rows: read with pread from
// the base file, ΔW of the block computed with one float32 GEMM on the BLAS
// that gonum's blas32 uses (OpenBLAS in builds with -tags openblas, see
// package lora), then W0 decoded, added and encoded back to the same dtype
// (round to nearest even) in one fused loop, and written with pwrite at its
// offset. A few shards are written at once, so that one's kernel copy
// overlaps another's arithmetic. Memory is bounded by a block per worker
// and the adapters, whatever the size of the model; the
// base is never loaded whole. With SafeMerge a value that is not finite
// once encoded (NaN, Inf, F16 overflow) fails the merge. The output folder
// is built in a temporary sibling, fsynced, optionally verified
// (Options.Verify) and renamed into place, so a crash or a failed check
// never leaves a half-merged model at the destination.
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
