package lora

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/loraflow/loraflow/internal/procfs"
	"github.com/loraflow/loraflow/internal/safeio"
)

// Limits on untrusted model input, checked before anything is allocated by
// what the input claims.
//
// The size bounds are far above every published checkpoint (the largest
// Llama 3.1 has hidden 16384, 126 layers, 128 heads, intermediate 53248,
// vocab 128256; Gemma's vocab is 256000), so they only keep the
// arithmetic of the memory estimate exact and refuse nonsense at once; the
// memory estimate (estimateModelBytes, estimateTrainBytes) against
// MemoryLimit is what refuses a model that does not fit.
const (
	MaxConfigBytes = 4 << 20 // config.json (real ones are a few KB)
	maxConfigDim   = 1 << 20 // hidden_size, intermediate_size, head_dim
	maxConfigLayer = 1 << 12 // num_hidden_layers
	maxConfigHeads = 1 << 12 // num_attention_heads, num_key_value_heads
	maxConfigVocab = 1 << 24 // vocab_size
	maxConfigPos   = 1 << 24 // max_position_embeddings
	maxStateBytes  = 1 << 10 // LATEST
)

// configIntKeys are the config.json fields read as sizes, with their bounds.
var configIntKeys = map[string]int{
	"vocab_size": maxConfigVocab, "hidden_size": maxConfigDim, "n_embd": maxConfigDim,
	"num_hidden_layers": maxConfigLayer, "n_layer": maxConfigLayer,
	"num_attention_heads": maxConfigHeads, "n_head": maxConfigHeads, "num_key_value_heads": maxConfigHeads,
	"intermediate_size": maxConfigDim, "n_inner": maxConfigDim, "head_dim": maxConfigDim,
	"max_position_embeddings": maxConfigPos, "n_positions": maxConfigPos, "n_ctx": maxConfigPos,
}

// configFloatKeys must be finite positive numbers when present.
var configFloatKeys = []string{"rms_norm_eps", "layer_norm_epsilon", "rope_theta"}

// checkConfigFields refuses a size field of config.json that is not a whole
// number in [1, bound], and a float field that is not a finite positive
// number, naming the field. A field set to null counts as absent (GPT-2's
// n_inner is null in its published config).
func checkConfigFields(m map[string]any) error {
	for key, bound := range configIntKeys {
		v, ok := m[key]
		if !ok || v == nil {
			continue
		}
		f, isNum := v.(float64)
		switch {
		case !isNum:
			return inputErr(KindBadConfig, "config.json: field %s is %s, want a whole number", key, jsonKind(v))
		case f != math.Trunc(f):
			return inputErr(KindBadConfig, "config.json: field %s is %v, want a whole number", key, f)
		case f < 1:
			return inputErr(KindBadConfig, "config.json: field %s is %v, want at least 1", key, f)
		case f > float64(bound):
			return inputErr(KindBadConfig, "config.json: field %s is %v, over the limit of %d", key, f, bound)
		}
	}
	for _, key := range configFloatKeys {
		v, ok := m[key]
		if !ok || v == nil {
			continue
		}
		f, isNum := v.(float64)
		if !isNum || f <= 0 || math.IsInf(f, 0) {
			return inputErr(KindBadConfig, "config.json: field %s is %v, want a positive number", key, v)
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// memoryLimit is the bound of MemoryLimit; 0: not read yet.
var memoryLimit atomic.Int64

// MemoryLimit is the memory a model and its training may use: the value set
// by SetMemoryLimit, else the process's limit (the cgroup's memory.max when
// set, else MemTotal). Models and training runs whose estimate exceeds it
// are refused before anything is allocated. 0 when nothing can be read: no
// bound.
func MemoryLimit() int64 {
	if v := memoryLimit.Load(); v != 0 {
		return max(v, 0)
	}
	v := procfs.MemoryLimit()
	if v <= 0 {
		v = -1
	}
	memoryLimit.Store(v)
	return max(v, 0)
}

// SetMemoryLimit sets the bound MemoryLimit returns (the operator's setting,
// for instance a worker's memory per activity); n <= 0 restores the
// process's own limit.
func SetMemoryLimit(n int64) {
	if n <= 0 {
		n = 0
	}
	memoryLimit.Store(n)
}

// estimateModelBytes is the float32 memory the weights of c take: the
// embedding (and an untied head), the position table (GPT-2) or the RoPE
// table (Llama), and per layer the attention and MLP projections. Norms and
// biases are left out (they are O(hidden) per layer). Computed in float64,
// so no size the bounds above allow overflows.
func estimateModelBytes(c ModelConfig) float64 {
	H, V, I, L := float64(c.Hidden), float64(c.VocabSize), float64(c.Intermediate), float64(c.Layers)
	qd, kd := float64(c.Heads*c.HeadDim), float64(c.KVHeads*c.HeadDim)
	params := V * H
	if !c.TieWordEmbeddings && !c.isGPT2() {
		params += V * H
	}
	perLayer := H*qd + 2*H*kd + qd*H
	if c.isGPT2() {
		params += float64(c.MaxPositions) * H
		perLayer += 2 * H * I
	} else {
		params += float64(c.MaxPositions) * float64(c.HeadDim) // cos and sin tables of HeadDim/2 each
		perLayer += 3 * H * I
	}
	return 4 * (params + L*perLayer)
}

// checkModelFits refuses a config whose weights alone would exceed
// MemoryLimit, naming the fields that make it large; scale is the fraction
// of float32's size the weights are held in (LoadOptions.weightScale).
func checkModelFits(c ModelConfig, scale float64) error {
	limit := MemoryLimit()
	need := estimateModelBytes(c) * scale
	if limit > 0 && need > float64(limit) {
		return inputErr(KindBadConfig, "config.json: the weights need about %s (vocab_size %d, hidden_size %d, num_hidden_layers %d, intermediate_size %d, max_position_embeddings %d), over the memory limit of %s",
			humanBytes(need), c.VocabSize, c.Hidden, c.Layers, c.Intermediate, c.MaxPositions, humanBytes(float64(limit)))
	}
	return nil
}

// estimateTrainBytes is the activation memory one micro-batch of training
// takes beyond the weights: per token and layer the block's kept values
// (about 4·hidden + 2·intermediate floats; only the block input, hidden,
// with gradient checkpointing, plus one block's full set), and one
// sequence's attention probabilities (heads × seq_len²).
func estimateTrainBytes(c ModelConfig, tc TrainConfig) float64 {
	tokens := float64(tc.BatchSize) * float64(tc.SeqLen)
	H, I, L := float64(c.Hidden), float64(c.Intermediate), float64(c.Layers)
	block := 4*H + 2*I
	kept := L * block
	if tc.GradientCheckpointing {
		kept = L*H + block
	}
	attn := float64(c.Heads) * float64(tc.SeqLen) * float64(tc.SeqLen)
	return 4 * (tokens*kept + attn)
}

// checkTrainLimits refuses a training configuration that cannot work for
// model c before anything is allocated: a seq_len beyond the model's
// positions (it used to be clamped silently), and a batch whose estimated
// activations with the weights exceed MemoryLimit. The fields are named as
// in the spec.
func checkTrainLimits(c ModelConfig, tc TrainConfig, weightBytes float64) error {
	switch {
	case tc.SeqLen > c.MaxPositions:
		return inputErr(KindBadTrainConfig, "seq_len %d is longer than the model's %d positions (config.json max_position_embeddings)", tc.SeqLen, c.MaxPositions)
	case tc.BatchSize < 0 || tc.SeqLen < 0 || tc.GradAccumSteps < 0 || tc.Steps < 0 || tc.Epochs < 0:
		return inputErr(KindBadTrainConfig, "negative size (batch_size %d, seq_len %d, grad_accum_steps %d, steps %d, epochs %d)",
			tc.BatchSize, tc.SeqLen, tc.GradAccumSteps, tc.Steps, tc.Epochs)
	}
	tc = tc.withDefaults(c)
	limit := MemoryLimit()
	need := weightBytes + estimateTrainBytes(c, tc)
	if limit > 0 && need > float64(limit) {
		return inputErr(KindBadTrainConfig, "batch_size %d × seq_len %d needs about %s of activations and weights, over the memory limit of %s (lower batch_size and raise grad_accum_steps, or turn on gradient_checkpointing)",
			tc.BatchSize, tc.SeqLen, humanBytes(need), humanBytes(float64(limit)))
	}
	return nil
}

func humanBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0f B", b)
}

// readConfig reads a checkpoint's config.json, refusing a special file or
// one over MaxConfigBytes unread.
func readConfig(path string) ([]byte, error) {
	b, err := safeio.ReadFile(path, MaxConfigBytes)
	switch {
	case errors.Is(err, safeio.ErrNotRegular), errors.Is(err, safeio.ErrTooLarge):
		return nil, &InputError{Kind: KindBadConfig, Msg: "config.json", Err: err}
	}
	return b, err
}
