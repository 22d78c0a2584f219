// Package lora is loraflow's training engine: a pure-Go transformer (the
// Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 and Phi-3 decoders, and
// GPT-2) with forward and backward passes, LoRA adapters on any
// linear layer, AdamW, checkpoints with exact resume, evaluation and
// generation. It reads Hugging Face checkpoint folders (LoadModel) and writes
// PEFT adapters (package lora/peft); it works on token IDs (Sequence) and
// knows nothing of Temporal. It imports gonum, vek, golang.org/x/sys/cpu, the
// standard library and its own internal packages (atomicfile, sgemm, vmath).
//
// # Entry points
//
//   - LoadModel / NewModel / (*Model).Save: Hugging Face folders (config.json,
//     model.safetensors or shards with their index, generation_config.json's
//     eos list) for the decoder model types llama, mistral, qwen2, qwen3,
//     gemma2, gemma3_text and phi3 (decoder.go: RMSNorm, RoPE with
//     rope_theta and rope_scaling default/linear/dynamic/llama3/yarn/longrope
//     and partial_rotary_factor, grouped-query attention with head_dim,
//     sliding windows per layer, q/k/v and MLP biases, Qwen3/Gemma 3 q/k
//     norms, Gemma's 1+w norms, √hidden embeddings, GeGLU, post-norms,
//     query_pre_attn_scalar and soft-capping, Phi-3's fused qkv_proj and
//     gate_up_proj, tied or untied head) and gpt2 (LayerNorm, learned
//     positions, GELU-tanh, fused Conv1D c_attn, optional "transformer."
//     prefix, tied head). A config.json field that changes the arithmetic
//     is implemented or refused by name (ParseModelConfig).
//   - Train: LoRA (peft.Config: target_modules, r, lora_alpha, use_rslora,
//     rank/alpha patterns, lora_dropout, bias, layers_to_transform,
//     modules_to_save, init_lora_weights true/false/gaussian/pissa/olora,
//     use_dora) or, with
//     TrainConfig.FullFineTune, every weight on the same code path. AdamW with
//     decoupled weight decay, LoRA+, constant/linear/cosine schedules with
//     warmup, global-norm clipping, gradient accumulation, loss only after
//     Sequence.PromptLen, right-padded batches of unequal length, optional
//     gradient checkpointing.
//   - Evaluate, ClassificationAccuracy, Logits, Generate (KV cache; greedy,
//     temperature, top-k, top-p, stop tokens).
//
// Bad input is reported as *InputError with a stable Kind.
//
// # DoRA, PiSSA and OLoRA
//
// use_dora trains PEFT's DoRA: each adapted layer computes
// m ⊙ (W0 + s·B·A)·x / ‖W0 + s·B·A‖_row (+ bias), with the row norm
// detached from the gradient as PEFT does, and with lora_dropout PEFT's
// training form W0·x + (m/‖·‖ − 1) ⊙ W0·xd + m/‖·‖ ⊙ s·B·A·xd. The magnitude m
// starts at the row norms of W0 + s·B·A (so the model is unchanged at
// initialisation), is trained with B's LoRA+ learning rate and with weight
// decay (as PEFT's LoRA+ optimizer and the HF Trainer group it), and is saved as "<module>.lora_magnitude_vector" ([out]). Evaluate,
// Logits, Generate and lora/merge accept such adapters.
//
// init_lora_weights "pissa" (an exact SVD, combine.PiSSA; slow on large
// layers), "pissa_niter_K" (PEFT's fast form: a randomized top-r SVD with K
// power iterations, seeded by TrainConfig.Seed) and "olora" (combine.OLoRA)
// take A₀, B₀ from the base weight and train against the residual W0 − s·B₀·A₀ held in
// memory; the loaded model is not changed. Of the two forms PEFT documents
// for saving such a run, Train returns the converted one (save_pretrained
// with path_initial_model_for_weight_conversion, combine.ConvertMutatedInit):
// a plain LoRA adapter of rank 2r (A' = [A; A₀], B' = [B, −B₀], alpha
// doubled, init_lora_weights true) that applies to the original base model,
// so evaluation, merging and publishing need no residual model. Checkpoint
// adapters are written in the same form. The other form — the trained A, B
// with the residual base model — is recovered with MutatedFromConverted; the
// residual model is the base with InitialFromConverted's adapter unmerged
// (merge.Unmerge), or for exact pissa and olora merge.InitFromBase. Combined with
// use_dora the conversion is exact as well: W_res + s·B·A = W0 + s·(B·A − B₀·A₀).
//
// # Numerics
//
// All matrix products are batched GEMMs through gonum's blas32/blas64
// interfaces, on one of three backends (BLASBackends, UseBLAS): OpenBLAS
// through cgo in a binary built with -tags openblas (libopenblas-dev), its
// narrow products (LoRA's rank-r ones, attention's per-head ones) on the Go
// kernel; "go", pure Go, with internal/sgemm's AVX-512 or AVX2/FMA assembly
// kernel in place of gonum's sgemm; and gonum's BLAS alone. The engine
// starts on the one that measured fastest for the CPU's family
// (blas_default.go: "go" on AMD EPYC), or the one LORAFLOW_BLAS names. Large products are split across the cores by the engine, each block
// one single-threaded BLAS call. Softmax, cross-entropy, SiLU and GELU run
// on vectorised kernels (github.com/viterin/vek, and internal/vmath's AVX2
// exp). The LoRA path is computed as (x·Aᵀ)·Bᵀ, never as a dense ΔW.
// Frozen base weights have no gradient buffers and no optimizer state. The
// logits are produced and differentiated in chunks of rows that have targets;
// attention probabilities and normalised block inputs are recomputed in the
// backward pass instead of being kept. Row-wise work is split across
// GOMAXPROCS goroutines in chunks whose boundaries do not depend on the thread
// count. The numerics are generic over float32 and float64: models run in
// float32, the finite-difference gradient checks in float64.
//
// # Reproducibility and checkpoints
//
// The data order of epoch e is a permutation seeded by (Seed, e) and the
// dropout masks of each block by (Seed, step, micro-batch, layer), so the
// same seed and data give bit-identical adapters on the same backend and
// CPU count, whatever GOMAXPROCS is (products are split by the machine's CPU
// count, not by GOMAXPROCS). With
// TrainConfig.CheckpointDir set, Train writes step-NNNNNN folders (trainable
// tensors, AdamW moments and run state in state.safetensors, plus the PEFT
// adapter) atomically and names the newest in LATEST; a later Train with the
// same inputs resumes from it and ends with the same adapter bytes as an
// uninterrupted run, provided it runs with the same BLAS backend and thread
// split. A checkpoint records both; a resume under others is allowed, with a
// warning, and is correct but not bit-identical. When LATEST is missing or
// names a folder that is gone or damaged, the newest intact step-NNNNNN
// folder is used instead (with a warning).
package lora
