// Package lora is loraflow's training engine: a pure-Go transformer (Llama and
// GPT-2 architectures) with forward and backward passes, LoRA adapters on any
// linear layer, AdamW, checkpoints with exact resume, evaluation and
// generation. It reads Hugging Face checkpoint folders and writes PEFT adapters
// (package lora/peft), works on token IDs (Sequence) and knows nothing of
// Temporal.
//
// All matrix products are batched GEMMs through gonum's blas32/blas64
// implementations (blas32.Use can plug in OpenBLAS). The LoRA path is computed
// as (x·Aᵀ)·Bᵀ, never as a dense ΔW. Frozen base weights have no gradient
// buffers and no optimizer state. The numerics are generic over float32 and
// float64; models run in float32, the gradient checks in float64.
//
// Results are deterministic: the same seed, data and thread count give
// bit-identical adapters, and a run resumed from a checkpoint ends with the
// same adapter bytes as an uninterrupted one.
package lora
