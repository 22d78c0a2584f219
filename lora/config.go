package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// ModelConfig is the architecture of a model, read from a Hugging Face
// config.json (llama or gpt2).
type ModelConfig struct {
	ModelType         string       // "llama" or "gpt2"
	VocabSize         int          // vocab_size
	Hidden            int          // hidden_size / n_embd
	Layers            int          // num_hidden_layers / n_layer
	Heads             int          // num_attention_heads / n_head
	KVHeads           int          // num_key_value_heads (= Heads for gpt2)
	HeadDim           int          // head_dim (Hidden/Heads by default)
	Intermediate      int          // intermediate_size / n_inner (4·n_embd by default)
	MaxPositions      int          // max_position_embeddings / n_positions
	NormEps           float64      // rms_norm_eps / layer_norm_epsilon
	RopeTheta         float64      // rope_theta (llama)
	RopeScaling       *RopeScaling // rope_scaling (llama): nil, "linear" or "llama3"
	TieWordEmbeddings bool         // tie_word_embeddings (always true for gpt2)
	AttentionBias     bool         // attention_bias (llama)
	MLPBias           bool         // mlp_bias (llama)
	BosTokenID        int          // -1 when absent
	EosTokenID        int          // -1 when absent
}

func (c ModelConfig) qDim() int  { return c.Heads * c.HeadDim }
func (c ModelConfig) kvDim() int { return c.KVHeads * c.HeadDim }

// Validate checks that the sizes make a model.
func (c ModelConfig) Validate() error {
	if c.ModelType != "llama" && c.ModelType != "gpt2" {
		return inputErr(KindUnknownModelType, "model_type %q is not supported (llama, gpt2)", c.ModelType)
	}
	bad := func(f string, args ...any) error { return inputErr(KindBadConfig, f, args...) }
	switch {
	case c.VocabSize <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.Intermediate <= 0 || c.MaxPositions <= 0:
		return bad("config.json: sizes must be positive (vocab %d, hidden %d, layers %d, heads %d, intermediate %d, positions %d)",
			c.VocabSize, c.Hidden, c.Layers, c.Heads, c.Intermediate, c.MaxPositions)
	case c.KVHeads <= 0 || c.Heads%c.KVHeads != 0:
		return bad("config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return bad("config.json: head dimension %d must be positive and even", c.HeadDim)
	case c.ModelType == "gpt2" && c.HeadDim*c.Heads != c.Hidden:
		return bad("config.json: n_embd %d is not divisible by n_head %d", c.Hidden, c.Heads)
	}
	return nil
}

// ParseModelConfig reads a Hugging Face config.json.
func ParseModelConfig(raw []byte) (ModelConfig, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return ModelConfig{}, inputErr(KindBadConfig, "config.json: %v", err)
	}
	if err := checkConfigFields(m); err != nil { // limits.go: bounds before any size is used
		return ModelConfig{}, err
	}
	num := func(keys ...string) (float64, bool) {
		for _, k := range keys {
			if v, ok := m[k].(float64); ok {
				return v, true
			}
		}
		return 0, false
	}
	inum := func(def int, keys ...string) int {
		if v, ok := num(keys...); ok {
			return int(v)
		}
		return def
	}
	fnum := func(def float64, keys ...string) float64 {
		if v, ok := num(keys...); ok {
			return v
		}
		return def
	}
	flag := func(def bool, key string) bool {
		if v, ok := m[key].(bool); ok {
			return v
		}
		return def
	}
	tokenID := func(key string) int {
		switch v := m[key].(type) {
		case float64:
			return int(v)
		case []any:
			if len(v) > 0 {
				if f, ok := v[0].(float64); ok {
					return int(f)
				}
			}
		}
		return -1
	}
	mt, _ := m["model_type"].(string)
	c := ModelConfig{ModelType: strings.ToLower(mt), BosTokenID: tokenID("bos_token_id"), EosTokenID: tokenID("eos_token_id")}
	switch c.ModelType {
	case "llama", "mistral", "qwen2":
		if c.ModelType != "llama" {
			return c, inputErr(KindUnknownModelType, "model_type %q is not supported (llama, gpt2)", mt)
		}
		c.VocabSize = inum(0, "vocab_size")
		c.Hidden = inum(0, "hidden_size")
		c.Layers = inum(0, "num_hidden_layers")
		c.Heads = inum(0, "num_attention_heads")
		c.KVHeads = inum(c.Heads, "num_key_value_heads")
		c.Intermediate = inum(0, "intermediate_size")
		c.MaxPositions = inum(2048, "max_position_embeddings")
		c.NormEps = fnum(1e-6, "rms_norm_eps")
		c.RopeTheta = fnum(10000, "rope_theta")
		c.TieWordEmbeddings = flag(false, "tie_word_embeddings")
		c.AttentionBias = flag(false, "attention_bias")
		c.MLPBias = flag(false, "mlp_bias")
		if c.Heads > 0 {
			c.HeadDim = inum(c.Hidden/c.Heads, "head_dim")
		}
		if rs, ok := m["rope_scaling"].(map[string]any); ok && rs != nil {
			kind, _ := rs["rope_type"].(string)
			if kind == "" {
				kind, _ = rs["type"].(string)
			}
			f := func(k string, def float64) float64 {
				if v, ok := rs[k].(float64); ok {
					return v
				}
				return def
			}
			sc := &RopeScaling{Type: kind, Factor: f("factor", 1), LowFreqFactor: f("low_freq_factor", 1),
				HighFreqFactor: f("high_freq_factor", 4), OriginalMaxPositions: int(f("original_max_position_embeddings", 8192))}
			switch {
			case kind != "linear" && kind != "llama3" && kind != "default":
				return c, inputErr(KindBadConfig, "config.json: rope_scaling type %q is not supported (linear, llama3)", kind)
			case sc.Factor <= 0 || (kind == "llama3" && sc.HighFreqFactor <= sc.LowFreqFactor):
				return c, inputErr(KindBadConfig, "config.json: rope_scaling %v has bad factors", rs)
			}
			if kind != "default" {
				c.RopeScaling = sc
			}
		}
		if act, ok := m["hidden_act"].(string); ok && act != "silu" {
			return c, inputErr(KindBadConfig, "config.json: hidden_act %q is not supported (silu)", act)
		}
	case "gpt2":
		c.VocabSize = inum(50257, "vocab_size")
		c.Hidden = inum(768, "n_embd", "hidden_size")
		c.Layers = inum(12, "n_layer", "num_hidden_layers")
		c.Heads = inum(12, "n_head", "num_attention_heads")
		c.KVHeads = c.Heads
		c.Intermediate = inum(4*c.Hidden, "n_inner")
		c.MaxPositions = inum(1024, "n_positions", "max_position_embeddings")
		c.NormEps = fnum(1e-5, "layer_norm_epsilon")
		c.TieWordEmbeddings = true
		if c.Heads > 0 {
			c.HeadDim = c.Hidden / c.Heads
		}
		if act, ok := m["activation_function"].(string); ok && act != "gelu_new" && act != "gelu_pytorch_tanh" {
			return c, inputErr(KindBadConfig, "config.json: activation_function %q is not supported (gelu_new)", act)
		}
	default:
		return c, inputErr(KindUnknownModelType, "config.json: model_type %q is not supported (llama, gpt2)", mt)
	}
	return c, c.Validate()
}

// MarshalHF renders the config as a Hugging Face config.json.
func (c ModelConfig) MarshalHF() ([]byte, error) {
	c = c.withDefaults()
	var m map[string]any
	id := func(v int) any {
		if v < 0 {
			return nil
		}
		return v
	}
	switch c.ModelType {
	case "llama":
		m = map[string]any{
			"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
			"vocab_size": c.VocabSize, "hidden_size": c.Hidden, "num_hidden_layers": c.Layers,
			"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "head_dim": c.HeadDim,
			"intermediate_size": c.Intermediate, "max_position_embeddings": c.MaxPositions,
			"rms_norm_eps": c.NormEps, "rope_theta": c.RopeTheta, "tie_word_embeddings": c.TieWordEmbeddings,
			"attention_bias": c.AttentionBias, "mlp_bias": c.MLPBias, "hidden_act": "silu",
			"rope_scaling": c.RopeScaling.hf(), "attention_dropout": 0.0, "initializer_range": 0.02,
			"bos_token_id": id(c.BosTokenID), "eos_token_id": id(c.EosTokenID), "torch_dtype": "float32",
		}
	case "gpt2":
		m = map[string]any{
			"architectures": []string{"GPT2LMHeadModel"}, "model_type": "gpt2",
			"vocab_size": c.VocabSize, "n_embd": c.Hidden, "n_layer": c.Layers, "n_head": c.Heads,
			"n_inner": c.Intermediate, "n_positions": c.MaxPositions, "n_ctx": c.MaxPositions,
			"layer_norm_epsilon": c.NormEps, "activation_function": "gelu_new",
			"attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0, "initializer_range": 0.02,
			"tie_word_embeddings": true, "bos_token_id": id(c.BosTokenID), "eos_token_id": id(c.EosTokenID), "torch_dtype": "float32",
		}
	default:
		return nil, fmt.Errorf("lora: cannot write config for model_type %q", c.ModelType)
	}
	return json.MarshalIndent(m, "", "  ")
}

// RopeScaling is Hugging Face's rope_scaling for Llama: "linear" divides
// every frequency by Factor; "llama3" divides only the low frequencies and
// blends the band between (Llama 3.1+).
type RopeScaling struct {
	Type                 string
	Factor               float64
	LowFreqFactor        float64
	HighFreqFactor       float64
	OriginalMaxPositions int
}

func (r *RopeScaling) hf() any {
	if r == nil {
		return nil
	}
	if r.Type == "linear" {
		return map[string]any{"rope_type": "linear", "factor": r.Factor}
	}
	return map[string]any{"rope_type": r.Type, "factor": r.Factor, "low_freq_factor": r.LowFreqFactor,
		"high_freq_factor": r.HighFreqFactor, "original_max_position_embeddings": r.OriginalMaxPositions}
}

// scale adjusts one inverse frequency.
func (r *RopeScaling) scale(inv float64) float64 {
	if r == nil {
		return inv
	}
	switch r.Type {
	case "linear":
		return inv / r.Factor
	case "llama3":
		old := float64(r.OriginalMaxPositions)
		lowWave, highWave := old/r.LowFreqFactor, old/r.HighFreqFactor
		wave := 2 * math.Pi / inv
		switch {
		case wave < highWave:
			return inv
		case wave > lowWave:
			return inv / r.Factor
		default:
			smooth := (old/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			return (1-smooth)*inv/r.Factor + smooth*inv
		}
	}
	return inv
}
