package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ModelConfig is the architecture of a model, read from a Hugging Face
// config.json. The decoder families follow transformers'
// models/<type>/modeling_<type>.py: llama, mistral, qwen2, qwen3, gemma2,
// gemma3_text and phi3 share one block (RMSNorm, RoPE, gated MLP) with the
// switches below; gpt2 is GPT-2.
type ModelConfig struct {
	ModelType         string       // one of SupportedModelTypes
	VocabSize         int          // vocab_size
	Hidden            int          // hidden_size / n_embd
	Layers            int          // num_hidden_layers / n_layer
	Heads             int          // num_attention_heads / n_head
	KVHeads           int          // num_key_value_heads (= Heads for gpt2)
	HeadDim           int          // head_dim (Hidden/Heads by default)
	Intermediate      int          // intermediate_size / n_inner (4·n_embd by default)
	MaxPositions      int          // max_position_embeddings / n_positions
	NormEps           float64      // rms_norm_eps / layer_norm_epsilon
	RopeTheta         float64      // rope_theta
	RopeScaling       *RopeScaling // rope_scaling: nil or one of the RopeScaling types
	TieWordEmbeddings bool         // tie_word_embeddings (always true for gpt2)
	AttentionBias     bool         // attention_bias: q, k, v and o have biases (llama, qwen3)
	MLPBias           bool         // mlp_bias (llama)
	BosTokenID        int          // -1 when absent
	EosTokenID        int          // -1 when absent; the first of a list

	// EosTokenIDs is every end-of-sequence id of config.json's eos_token_id
	// (and generation_config.json's, when LoadModel finds one).
	EosTokenIDs []int

	// QKVBias: q, k and v have biases, o has none (qwen2).
	QKVBias bool
	// QKNorm: RMSNorm over each head of q and k before RoPE (qwen3, gemma3).
	QKNorm bool
	// SlidingWindow is the attention window of the layers that have one
	// (query i sees keys j with i−j < SlidingWindow); 0: none.
	SlidingWindow int
	// LayerSliding tells per layer whether SlidingWindow applies (nil: all
	// layers when SlidingWindow > 0).
	LayerSliding []bool
	// Gemma marks the Gemma conventions: norms scale by 1+w, embeddings are
	// multiplied by √Hidden, the MLP is GeGLU with tanh-GELU and there are
	// norms after attention and after the MLP (gemma2, gemma3_text).
	Gemma bool
	// AttnSoftcap and FinalSoftcap cap the attention scores and the logits
	// as c·tanh(x/c); 0: none (attn_logit_softcapping, final_logit_softcapping).
	AttnSoftcap, FinalSoftcap float64
	// QueryPreAttnScalar: scores are scaled by QueryPreAttnScalar^-½
	// instead of HeadDim^-½ (gemma); 0: HeadDim.
	QueryPreAttnScalar float64
	// RopeLocalTheta is the RoPE base of the sliding-window layers
	// (gemma3_text rope_local_base_freq, without rope_scaling); 0: RopeTheta.
	RopeLocalTheta float64
	// RotaryDim is how many dimensions of each head RoPE rotates
	// (partial_rotary_factor·HeadDim); 0: HeadDim.
	RotaryDim int
	// Fused: q, k, v are one qkv_proj and gate, up one gate_up_proj (phi3).
	Fused bool
	// OriginalMaxPositions is phi3's top-level
	// original_max_position_embeddings (longrope); 0: absent.
	OriginalMaxPositions int
}

// SupportedModelTypes are the config.json model_type values the engine runs.
var SupportedModelTypes = []string{"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "gpt2"}

func (c ModelConfig) qDim() int  { return c.Heads * c.HeadDim }
func (c ModelConfig) kvDim() int { return c.KVHeads * c.HeadDim }

// rotaryDim is the number of rotated dimensions of a head.
func (c ModelConfig) rotaryDim() int {
	if c.RotaryDim > 0 {
		return c.RotaryDim
	}
	return c.HeadDim
}

// sliding reports whether layer i attends through the sliding window.
func (c ModelConfig) sliding(i int) bool {
	if c.SlidingWindow <= 0 {
		return false
	}
	return c.LayerSliding == nil || c.LayerSliding[i]
}

// attnScale is the factor of q·k before softmax.
func (c ModelConfig) attnScale() float64 {
	if c.QueryPreAttnScalar > 0 {
		return 1 / math.Sqrt(c.QueryPreAttnScalar)
	}
	return 1 / math.Sqrt(float64(c.HeadDim))
}

func unsupportedType(mt string) error {
	return inputErr(KindUnknownModelType, "config.json: model_type %q is not supported (supported: %s)", mt, strings.Join(SupportedModelTypes, ", "))
}

// Validate checks that the sizes make a model.
func (c ModelConfig) Validate() error {
	if !slices.Contains(SupportedModelTypes, c.ModelType) {
		return unsupportedType(c.ModelType)
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
	case c.RotaryDim < 0 || c.RotaryDim > c.HeadDim || c.RotaryDim%2 != 0:
		return bad("config.json: partial_rotary_factor gives %d rotary dimensions of a %d-wide head (must be even and at most the head)", c.RotaryDim, c.HeadDim)
	case c.LayerSliding != nil && len(c.LayerSliding) != c.Layers:
		return bad("config.json: layer_types has %d entries for %d layers", len(c.LayerSliding), c.Layers)
	case c.SlidingWindow < 0:
		return bad("config.json: sliding_window %d is negative", c.SlidingWindow)
	case c.AttnSoftcap < 0 || c.FinalSoftcap < 0 || c.QueryPreAttnScalar < 0:
		return bad("config.json: soft-capping and query_pre_attn_scalar must not be negative")
	case c.RopeTheta < 0 || c.RopeLocalTheta < 0:
		return bad("config.json: rope_theta %v must be positive", c.RopeTheta)
	}
	if err := c.RopeScaling.validate(c.rotaryDim()); err != nil {
		return err
	}
	return nil
}

// ParseModelConfig reads a Hugging Face config.json. A field that changes
// the arithmetic of the model type's published definition is implemented
// or refused with a KindBadConfig error naming it; fields the definition
// does not read (token ids, dtypes, initialisation) are ignored, as
// transformers ignores them.
func ParseModelConfig(raw []byte) (ModelConfig, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return ModelConfig{}, inputErr(KindBadConfig, "config.json: %v", err)
	}
	if err := checkConfigFields(m); err != nil { // limits.go: bounds before any size is used
		return ModelConfig{}, err
	}
	p := &configReader{m: m}
	mt, _ := m["model_type"].(string)
	c := ModelConfig{ModelType: strings.ToLower(mt), BosTokenID: -1, EosTokenID: -1}
	c.BosTokenID, _ = firstTokenID(m["bos_token_id"])
	c.EosTokenID, c.EosTokenIDs = firstTokenID(m["eos_token_id"])
	switch c.ModelType {
	case "gpt2":
		c.VocabSize = p.int(50257, "vocab_size")
		c.Hidden = p.int(768, "n_embd", "hidden_size")
		c.Layers = p.int(12, "n_layer", "num_hidden_layers")
		c.Heads = p.int(12, "n_head", "num_attention_heads")
		c.KVHeads = c.Heads
		c.Intermediate = p.int(4*c.Hidden, "n_inner")
		c.MaxPositions = p.int(1024, "n_positions", "max_position_embeddings")
		c.NormEps = p.float(1e-5, "layer_norm_epsilon")
		c.TieWordEmbeddings = true
		if c.Heads > 0 {
			c.HeadDim = c.Hidden / c.Heads
		}
		p.oneOf("activation_function", "gelu_new", "gelu_new", "gelu_pytorch_tanh")
		// modeling_gpt2.py: these change the attention arithmetic.
		p.mustBe("scale_attn_weights", true)
		p.mustBe("scale_attn_by_inverse_layer_idx", false)
		p.mustBe("reorder_and_upcast_attn", false)
		p.mustBe("add_cross_attention", false)
	case "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3":
		parseDecoder(p, &c)
	default:
		return c, unsupportedType(mt)
	}
	if p.err != nil {
		return c, p.err
	}
	return c, c.Validate()
}

// parseDecoder reads the fields of the Llama-like families.
func parseDecoder(p *configReader, c *ModelConfig) {
	t := c.ModelType
	gemma := t == "gemma2" || t == "gemma3_text"
	c.Gemma = gemma
	c.VocabSize = p.int(0, "vocab_size")
	c.Hidden = p.int(0, "hidden_size")
	c.Layers = p.int(0, "num_hidden_layers")
	c.Heads = p.int(0, "num_attention_heads")
	c.KVHeads = p.int(c.Heads, "num_key_value_heads")
	c.Intermediate = p.int(0, "intermediate_size")
	c.MaxPositions = p.int(2048, "max_position_embeddings")
	c.NormEps = p.float(map[bool]float64{true: 1e-5, false: 1e-6}[t == "phi3"], "rms_norm_eps")
	c.RopeTheta = p.float(map[bool]float64{true: 1e6, false: 1e4}[t == "gemma3_text"], "rope_theta")
	c.TieWordEmbeddings = p.bool(gemma, "tie_word_embeddings")
	if c.Heads > 0 {
		c.HeadDim = p.int(c.Hidden/c.Heads, "head_dim")
	}
	// Dropout changes the training arithmetic; the published checkpoints
	// have none.
	for _, k := range []string{"attention_dropout", "resid_pdrop", "embd_pdrop"} {
		p.zero(k)
	}
	p.mustBe("use_bidirectional_attention", false)
	act := "silu"
	actKey := "hidden_act"
	if gemma {
		act, actKey = "gelu_pytorch_tanh", "hidden_activation"
		if _, ok := p.m[actKey]; !ok {
			actKey = "hidden_act"
		}
	}
	p.oneOf(actKey, act, act)
	switch t {
	case "llama":
		c.AttentionBias = p.bool(false, "attention_bias")
		c.MLPBias = p.bool(false, "mlp_bias")
	case "qwen3":
		c.AttentionBias = p.bool(false, "attention_bias")
		c.QKNorm = true
	case "qwen2":
		c.QKVBias = true
	case "gemma2":
		c.AttnSoftcap = p.nullable(50, "attn_logit_softcapping")
		c.FinalSoftcap = p.nullable(30, "final_logit_softcapping")
	case "gemma3_text":
		c.AttnSoftcap = p.nullable(0, "attn_logit_softcapping")
		c.FinalSoftcap = p.nullable(0, "final_logit_softcapping")
		c.QKNorm = true
		c.RopeLocalTheta = p.float(1e4, "rope_local_base_freq")
	case "phi3":
		c.Fused = true
		c.OriginalMaxPositions = p.int(0, "original_max_position_embeddings")
		if f := p.float(1, "partial_rotary_factor"); f != 1 {
			c.RotaryDim = int(float64(c.HeadDim) * f)
			if f <= 0 || f > 1 {
				p.fail("partial_rotary_factor", f)
			}
		}
	}
	if gemma {
		c.QueryPreAttnScalar = p.float(256, "query_pre_attn_scalar")
		if p.has("attention_bias") && p.bool(false, "attention_bias") {
			p.fail("attention_bias", true)
		}
	}
	parseWindow(p, c)
	c.RopeScaling = parseRopeScaling(p, c)
}

// parseWindow reads sliding-window attention: which layers have a window
// and its size, by each family's rule (layer_types when given).
func parseWindow(p *configReader, c *ModelConfig) {
	t := c.ModelType
	win, hasWin := p.optInt("sliding_window")
	switch t {
	case "llama":
		return // LlamaAttention has no window
	case "qwen2", "qwen3":
		// Qwen2Config/Qwen3Config: the window applies only with
		// use_sliding_window, to layers ≥ max_window_layers.
		if !p.bool(false, "use_sliding_window") {
			win, hasWin = 0, false
			break
		}
		mwl := p.int(c.Layers, "max_window_layers")
		c.LayerSliding = make([]bool, max(c.Layers, 0))
		for i := range c.LayerSliding {
			c.LayerSliding[i] = i >= mwl
		}
	case "gemma2":
		if !hasWin {
			win, hasWin = 4096, true
		}
		c.LayerSliding = make([]bool, max(c.Layers, 0))
		for i := range c.LayerSliding {
			c.LayerSliding[i] = i%2 == 0 // Gemma2Config: even layers slide
		}
	case "gemma3_text":
		if !hasWin {
			win, hasWin = 4096, true
		}
		pat := p.int(6, "sliding_window_pattern")
		c.LayerSliding = make([]bool, max(c.Layers, 0))
		for i := range c.LayerSliding {
			c.LayerSliding[i] = pat <= 0 || (i+1)%pat != 0
		}
	}
	if lt, ok := p.m["layer_types"].([]any); ok {
		c.LayerSliding = make([]bool, len(lt))
		for i, v := range lt {
			switch v {
			case "sliding_attention":
				c.LayerSliding[i] = true
			case "full_attention":
			default:
				p.fail(fmt.Sprintf("layer_types[%d]", i), v)
			}
		}
	} else if v, ok := p.m["layer_types"]; ok && v != nil {
		p.fail("layer_types", v)
	}
	if hasWin {
		c.SlidingWindow = win
		if win <= 0 {
			p.fail("sliding_window", win)
		}
	}
	if c.SlidingWindow == 0 {
		c.LayerSliding = nil
	}
}

// RopeScaling is Hugging Face's rope_scaling (transformers
// modeling_rope_utils.py, ROPE_INIT_FUNCTIONS): "linear" divides every
// frequency by Factor; "llama3" divides only the low frequencies and blends
// the band between (Llama 3.1+); "dynamic" (NTK) equals the default within
// max_position_embeddings, which the engine never exceeds; "yarn" blends
// interpolated and extrapolated frequencies over a ramp and scales cos and
// sin by the attention factor; "longrope" divides each frequency by its
// short or long factor, by sequence length.
type RopeScaling struct {
	Type                 string
	Factor               float64
	LowFreqFactor        float64
	HighFreqFactor       float64
	OriginalMaxPositions int
	// yarn
	AttentionFactor    float64 // 0: from Factor
	BetaFast, BetaSlow float64
	// longrope: per rotated frequency
	ShortFactor, LongFactor []float64
}

// parseRopeScaling reads rope_scaling (or a flat transformers v5
// rope_parameters).
func parseRopeScaling(p *configReader, c *ModelConfig) *RopeScaling {
	raw, key := p.m["rope_scaling"], "rope_scaling"
	if raw == nil {
		if rp, ok := p.m["rope_parameters"].(map[string]any); ok {
			key = "rope_parameters"
			if th, ok := rp["rope_theta"].(float64); ok {
				c.RopeTheta = th
			}
			raw = rp
		}
	}
	if raw == nil {
		return nil
	}
	rs, ok := raw.(map[string]any)
	if !ok {
		p.fail(key, raw)
		return nil
	}
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
	list := func(k string) []float64 {
		a, _ := rs[k].([]any)
		out := make([]float64, 0, len(a))
		for _, v := range a {
			x, ok := v.(float64)
			if !ok || x <= 0 {
				p.fail(key+"."+k, rs[k])
				return nil
			}
			out = append(out, x)
		}
		return out
	}
	known := map[string][]string{
		"default":  {},
		"linear":   {"factor"},
		"dynamic":  {"factor", "original_max_position_embeddings"},
		"llama3":   {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"},
		"yarn":     {"factor", "attention_factor", "beta_fast", "beta_slow"},
		"longrope": {"short_factor", "long_factor", "factor", "attention_factor", "original_max_position_embeddings"},
	}
	allowed, ok := known[kind]
	if !ok {
		p.failMsg("config.json: %s type %q is not supported (default, linear, dynamic, llama3, yarn, longrope)", key, kind)
		return nil
	}
	for k := range rs {
		if k == "rope_type" || k == "type" || k == "rope_theta" || slices.Contains(allowed, k) {
			continue
		}
		p.failMsg("config.json: %s.%s (=%v) is not supported with rope_type %q", key, k, rs[k], kind)
		return nil
	}
	sc := &RopeScaling{Type: kind, Factor: f("factor", 1), LowFreqFactor: f("low_freq_factor", 1),
		HighFreqFactor: f("high_freq_factor", 4), OriginalMaxPositions: int(f("original_max_position_embeddings", 8192)),
		AttentionFactor: f("attention_factor", 0), BetaFast: f("beta_fast", 32), BetaSlow: f("beta_slow", 1)}
	switch kind {
	case "default", "dynamic":
		return nil
	case "longrope":
		sc.ShortFactor, sc.LongFactor = list("short_factor"), list("long_factor")
		orig := c.OriginalMaxPositions
		if v, ok := rs["original_max_position_embeddings"].(float64); ok {
			orig = int(v)
		}
		if orig <= 0 {
			p.failMsg("config.json: rope_scaling longrope needs original_max_position_embeddings")
			return nil
		}
		sc.OriginalMaxPositions = orig
		sc.LowFreqFactor, sc.HighFreqFactor, sc.BetaFast, sc.BetaSlow = 0, 0, 0, 0
		if _, ok := rs["factor"].(float64); !ok || c.OriginalMaxPositions > 0 {
			sc.Factor = float64(c.MaxPositions) / float64(orig)
		}
	case "linear", "llama3":
		sc.AttentionFactor, sc.BetaFast, sc.BetaSlow = 0, 0, 0
		if kind == "linear" {
			sc.LowFreqFactor, sc.HighFreqFactor, sc.OriginalMaxPositions = 0, 0, 0
		}
	case "yarn":
		sc.LowFreqFactor, sc.HighFreqFactor, sc.OriginalMaxPositions = 0, 0, 0
	}
	return sc
}

// validate checks the factors against the rotated width dim.
func (r *RopeScaling) validate(dim int) error {
	if r == nil {
		return nil
	}
	bad := func(f string, args ...any) error {
		return inputErr(KindBadConfig, "config.json: rope_scaling "+f, args...)
	}
	switch {
	case r.Factor <= 0 || math.IsNaN(r.Factor):
		return bad("factor %v must be positive", r.Factor)
	case r.Type == "llama3" && (r.HighFreqFactor <= r.LowFreqFactor || r.LowFreqFactor <= 0 || r.OriginalMaxPositions <= 0):
		return bad("llama3 needs 0 < low_freq_factor < high_freq_factor (got %v, %v) and original_max_position_embeddings > 0", r.LowFreqFactor, r.HighFreqFactor)
	case r.Type == "yarn" && (r.BetaFast < r.BetaSlow || r.AttentionFactor < 0):
		return bad("yarn needs beta_fast ≥ beta_slow (got %v, %v) and attention_factor ≥ 0", r.BetaFast, r.BetaSlow)
	case r.Type == "longrope" && (len(r.ShortFactor) != dim/2 || len(r.LongFactor) != dim/2):
		return bad("longrope short_factor and long_factor need %d entries each (got %d, %d)", dim/2, len(r.ShortFactor), len(r.LongFactor))
	}
	return nil
}

func (r *RopeScaling) hf() any {
	if r == nil {
		return nil
	}
	switch r.Type {
	case "linear":
		return map[string]any{"rope_type": "linear", "factor": r.Factor}
	case "yarn":
		m := map[string]any{"rope_type": "yarn", "factor": r.Factor, "beta_fast": r.BetaFast, "beta_slow": r.BetaSlow}
		if r.AttentionFactor > 0 {
			m["attention_factor"] = r.AttentionFactor
		}
		return m
	case "longrope":
		return map[string]any{"rope_type": "longrope", "short_factor": r.ShortFactor, "long_factor": r.LongFactor,
			"original_max_position_embeddings": r.OriginalMaxPositions}
	}
	return map[string]any{"rope_type": r.Type, "factor": r.Factor, "low_freq_factor": r.LowFreqFactor,
		"high_freq_factor": r.HighFreqFactor, "original_max_position_embeddings": r.OriginalMaxPositions}
}

// scale adjusts one inverse frequency (index i of dim/2) of the default
// RoPE; long picks longrope's long factors.
func (r *RopeScaling) scale(inv float64) float64 { return r.scaleAt(inv, 0, 0, false) }

func (r *RopeScaling) scaleAt(inv float64, i, dim int, long bool) float64 {
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
	case "longrope":
		if long {
			return inv / r.LongFactor[i]
		}
		return inv / r.ShortFactor[i]
	}
	return inv
}

// yarnInv is yarn's inverse frequency i of dim for base theta over
// positions (the pretrained max_position_embeddings).
func (r *RopeScaling) yarnInv(i, dim int, theta float64, positions int) float64 {
	corr := func(rot float64) float64 {
		return float64(dim) * math.Log(float64(positions)/(rot*2*math.Pi)) / (2 * math.Log(theta))
	}
	low := max(math.Floor(corr(r.BetaFast)), 0)
	high := min(math.Ceil(corr(r.BetaSlow)), float64(dim-1))
	if low == high {
		high += 0.001
	}
	ramp := min(max((float64(i)-low)/(high-low), 0), 1)
	extra := 1 - ramp // the share of the extrapolated frequency
	pos := math.Pow(theta, float64(2*i)/float64(dim))
	return (1/(r.Factor*pos))*(1-extra) + (1/pos)*extra
}

// attentionFactor multiplies cos and sin (yarn, longrope).
func (r *RopeScaling) attentionFactor() float64 {
	if r == nil {
		return 1
	}
	switch r.Type {
	case "yarn":
		if r.AttentionFactor > 0 {
			return r.AttentionFactor
		}
		return 0.1*math.Log(r.Factor) + 1
	case "longrope":
		if r.AttentionFactor > 0 {
			return r.AttentionFactor
		}
		if r.Factor <= 1 {
			return 1
		}
		return math.Sqrt(1 + math.Log(r.Factor)/math.Log(float64(r.OriginalMaxPositions)))
	}
	return 1
}

// firstTokenID reads a token id or a list of them.
func firstTokenID(v any) (int, []int) {
	switch v := v.(type) {
	case float64:
		return int(v), []int{int(v)}
	case []any:
		var ids []int
		for _, x := range v {
			if f, ok := x.(float64); ok {
				ids = append(ids, int(f))
			}
		}
		if len(ids) > 0 {
			return ids[0], ids
		}
	}
	return -1, nil
}

// configReader reads typed fields of config.json and keeps the first error.
type configReader struct {
	m   map[string]any
	err error
}

func (p *configReader) has(k string) bool { v, ok := p.m[k]; return ok && v != nil }

func (p *configReader) fail(field string, v any) {
	p.failMsg("config.json: %s = %v is not supported", field, v)
}

func (p *configReader) failMsg(f string, args ...any) {
	if p.err == nil {
		p.err = inputErr(KindBadConfig, f, args...)
	}
}

func (p *configReader) num(keys ...string) (float64, string, bool) {
	for _, k := range keys {
		switch v := p.m[k].(type) {
		case float64:
			return v, k, true
		case nil:
		default:
			p.failMsg("config.json: %s = %v is not a number", k, v)
		}
	}
	return 0, "", false
}

func (p *configReader) int(def int, keys ...string) int {
	v, k, ok := p.num(keys...)
	if !ok {
		return def
	}
	if v != math.Trunc(v) || math.Abs(v) > 1<<40 {
		p.failMsg("config.json: %s = %v is not an integer", k, v)
		return def
	}
	return int(v)
}

// optInt reads an integer that may be null or absent.
func (p *configReader) optInt(key string) (int, bool) {
	if !p.has(key) {
		return 0, false
	}
	return p.int(0, key), true
}

func (p *configReader) float(def float64, keys ...string) float64 {
	if v, _, ok := p.num(keys...); ok {
		return v
	}
	return def
}

// nullable reads a number where null means 0 and absence means def.
func (p *configReader) nullable(def float64, key string) float64 {
	if v, ok := p.m[key]; ok && v == nil {
		return 0
	}
	return p.float(def, key)
}

func (p *configReader) bool(def bool, key string) bool {
	switch v := p.m[key].(type) {
	case bool:
		return v
	case nil:
		return def
	default:
		p.failMsg("config.json: %s = %v is not a boolean", key, v)
		return def
	}
}

// mustBe refuses a boolean field set to anything but want (absent is fine).
func (p *configReader) mustBe(key string, want bool) {
	if p.has(key) && p.bool(want, key) != want {
		p.fail(key, !want)
	}
}

// zero refuses a number field other than 0 (absent is fine).
func (p *configReader) zero(key string) {
	if v := p.float(0, key); v != 0 {
		p.fail(key, v)
	}
}

// oneOf refuses a string field outside allowed (absent: def).
func (p *configReader) oneOf(key, def string, allowed ...string) string {
	v, ok := p.m[key]
	if !ok || v == nil {
		return def
	}
	s, _ := v.(string)
	if !slices.Contains(allowed, s) {
		p.failMsg("config.json: %s %q is not supported (%s)", key, fmt.Sprint(v), strings.Join(allowed, ", "))
	}
	return s
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
	eos := id(c.EosTokenID)
	if len(c.EosTokenIDs) > 1 {
		eos = c.EosTokenIDs
	}
	switch c.ModelType {
	case "gpt2":
		m = map[string]any{
			"architectures": []string{"GPT2LMHeadModel"}, "model_type": "gpt2",
			"vocab_size": c.VocabSize, "n_embd": c.Hidden, "n_layer": c.Layers, "n_head": c.Heads,
			"n_inner": c.Intermediate, "n_positions": c.MaxPositions, "n_ctx": c.MaxPositions,
			"layer_norm_epsilon": c.NormEps, "activation_function": "gelu_new",
			"attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0, "initializer_range": 0.02,
			"tie_word_embeddings": true, "bos_token_id": id(c.BosTokenID), "eos_token_id": eos, "torch_dtype": "float32",
		}
	case "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3":
		arch := map[string]string{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
			"qwen3": "Qwen3ForCausalLM", "gemma2": "Gemma2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM"}
		m = map[string]any{
			"architectures": []string{arch[c.ModelType]}, "model_type": c.ModelType,
			"vocab_size": c.VocabSize, "hidden_size": c.Hidden, "num_hidden_layers": c.Layers,
			"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "head_dim": c.HeadDim,
			"intermediate_size": c.Intermediate, "max_position_embeddings": c.MaxPositions,
			"rms_norm_eps": c.NormEps, "rope_theta": c.RopeTheta, "tie_word_embeddings": c.TieWordEmbeddings,
			"hidden_act": "silu", "rope_scaling": c.RopeScaling.hf(), "attention_dropout": 0.0, "initializer_range": 0.02,
			"bos_token_id": id(c.BosTokenID), "eos_token_id": eos, "torch_dtype": "float32",
		}
		c.marshalFamily(m)
	default:
		return nil, fmt.Errorf("lora: cannot write config for model_type %q", c.ModelType)
	}
	return json.MarshalIndent(m, "", "  ")
}

// marshalFamily adds the family's own fields so that ParseModelConfig reads
// c back.
func (c ModelConfig) marshalFamily(m map[string]any) {
	var layerTypes []string
	if c.SlidingWindow > 0 && c.LayerSliding != nil {
		for i := 0; i < c.Layers; i++ {
			if c.sliding(i) {
				layerTypes = append(layerTypes, "sliding_attention")
			} else {
				layerTypes = append(layerTypes, "full_attention")
			}
		}
		m["layer_types"] = layerTypes
	}
	if c.SlidingWindow > 0 {
		m["sliding_window"] = c.SlidingWindow
	} else {
		m["sliding_window"] = nil
	}
	switch c.ModelType {
	case "llama":
		m["attention_bias"], m["mlp_bias"] = c.AttentionBias, c.MLPBias
		delete(m, "sliding_window")
		delete(m, "layer_types")
	case "qwen3":
		m["attention_bias"] = c.AttentionBias
		fallthrough
	case "qwen2":
		m["use_sliding_window"] = c.SlidingWindow > 0
		if c.SlidingWindow == 0 {
			m["sliding_window"] = nil
		}
	case "gemma2", "gemma3_text":
		delete(m, "hidden_act")
		m["hidden_activation"] = "gelu_pytorch_tanh"
		m["query_pre_attn_scalar"] = c.QueryPreAttnScalar
		m["attn_logit_softcapping"] = nilIfZero(c.AttnSoftcap)
		m["final_logit_softcapping"] = nilIfZero(c.FinalSoftcap)
		if c.ModelType == "gemma3_text" {
			m["rope_local_base_freq"] = c.RopeLocalTheta
			if p := c.slidingPattern(); p > 0 { // for readers that predate layer_types
				m["sliding_window_pattern"] = p
			}
		}
	case "phi3":
		if c.RotaryDim > 0 {
			m["partial_rotary_factor"] = float64(c.RotaryDim) / float64(c.HeadDim)
		}
		if c.OriginalMaxPositions > 0 {
			m["original_max_position_embeddings"] = c.OriginalMaxPositions
		}
	}
}

// slidingPattern is Gemma 3's sliding_window_pattern that gives
// LayerSliding (every p-th layer global), or 0 when none does.
func (c ModelConfig) slidingPattern() int {
	for p := 1; p <= c.Layers+1; p++ {
		ok := true
		for i := 0; i < c.Layers && ok; i++ {
			ok = c.sliding(i) == ((i+1)%p != 0)
		}
		if ok {
			return p
		}
	}
	return 0
}

func nilIfZero(v float64) any {
	if v == 0 {
		return nil
	}
	return v
}
