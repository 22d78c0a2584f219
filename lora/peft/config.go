package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Config is a PEFT LoraConfig as stored in adapter_config.json.
type Config struct {
	PeftType            string  `json:"peft_type"`
	TaskType            string  `json:"task_type,omitempty"`
	BaseModelNameOrPath string  `json:"base_model_name_or_path"`
	Revision            *string `json:"revision"`
	InferenceMode       bool    `json:"inference_mode"`

	R             int           `json:"r"`
	LoraAlpha     float64       `json:"lora_alpha"`
	LoraDropout   float64       `json:"lora_dropout"`
	TargetModules TargetModules `json:"target_modules"`
	// ExcludeModules, when set, is a list (suffix match) or regex of modules never adapted.
	ExcludeModules *TargetModules `json:"exclude_modules"`

	Bias            string          `json:"bias"` // "none" | "all" | "lora_only"
	FanInFanOut     bool            `json:"fan_in_fan_out"`
	UseRSLoRA       bool            `json:"use_rslora"`
	UseDoRA         bool            `json:"use_dora"`
	InitLoraWeights InitLoraWeights `json:"init_lora_weights"`

	RankPattern       map[string]int     `json:"rank_pattern"`
	AlphaPattern      map[string]float64 `json:"alpha_pattern"`
	LayersToTransform IntList            `json:"layers_to_transform"`
	LayersPattern     StringList         `json:"layers_pattern"`
	ModulesToSave     []string           `json:"modules_to_save"`

	PeftVersion string `json:"peft_version,omitempty"`

	// The other fields of PEFT's LoraConfig.to_dict (peft's
	// src/peft/tuners/lora/config.py, LoraConfig, which drops only
	// runtime_config; PeftConfigMixin in src/peft/config.py adds
	// auto_mapping), written with PEFT's defaults so that adapter_config.json
	// holds every field current PEFT writes. Those loraflow does not
	// implement are kept raw and refused by Validate unless they hold PEFT's
	// default (see unsupportedFields); initialisation-only configs (LoftQ,
	// EVA, CorDA, LoRA-GA) and Megatron's are accepted as they do not change
	// the adapter's forward pass.
	AutoMapping           json.RawMessage `json:"auto_mapping"`            // default None
	MegatronConfig        json.RawMessage `json:"megatron_config"`         // default None
	MegatronCore          *string         `json:"megatron_core"`           // default "megatron.core"
	TrainableTokenIndices json.RawMessage `json:"trainable_token_indices"` // default None
	LoftQConfig           json.RawMessage `json:"loftq_config"`            // default_factory=dict
	EvaConfig             json.RawMessage `json:"eva_config"`              // default None
	CordaConfig           json.RawMessage `json:"corda_config"`            // default None
	LoraGAConfig          json.RawMessage `json:"lora_ga_config"`          // default None
	VeloraConfig          json.RawMessage `json:"velora_config"`           // default None
	AloraInvocationTokens json.RawMessage `json:"alora_invocation_tokens"` // default None
	UseQALoRA             bool            `json:"use_qalora"`              // default False
	QALoRAGroupSize       *int            `json:"qalora_group_size"`       // default 16
	MontecloraConfig      json.RawMessage `json:"monteclora_config"`       // default None
	LayerReplication      json.RawMessage `json:"layer_replication"`       // default None
	LoraBias              bool            `json:"lora_bias"`               // default False
	TargetParameters      json.RawMessage `json:"target_parameters"`       // default None
	UseBDLoRA             json.RawMessage `json:"use_bdlora"`              // default None
	ArrowConfig           json.RawMessage `json:"arrow_config"`            // default None
	KasaConfig            json.RawMessage `json:"kasa_config"`             // default None
	EnsureWeightTying     bool            `json:"ensure_weight_tying"`     // default False
}

// Defaults of LoraConfig fields that are not Go zero values
// (src/peft/tuners/lora/config.py: megatron_core default="megatron.core",
// qalora_group_size default=16, loftq_config default_factory=dict).
const (
	defaultMegatronCore    = "megatron.core"
	defaultQALoRAGroupSize = 16
)

// unsupportedFields lists the LoraConfig fields whose non-default value
// changes what the adapter computes in ways loraflow does not implement
// (LoRA variants marked "is_lora_variant" in PEFT's field metadata, extra
// trainable tensors, model surgery). Each is refused by name.
func (c Config) unsupportedFields() []string {
	var bad []string
	raw := []struct {
		name string
		v    json.RawMessage
	}{
		{"trainable_token_indices", c.TrainableTokenIndices},
		{"velora_config", c.VeloraConfig},
		{"alora_invocation_tokens", c.AloraInvocationTokens},
		{"monteclora_config", c.MontecloraConfig},
		{"layer_replication", c.LayerReplication},
		{"target_parameters", c.TargetParameters},
		{"use_bdlora", c.UseBDLoRA},
		{"arrow_config", c.ArrowConfig},
		{"kasa_config", c.KasaConfig},
	}
	for _, f := range raw {
		if t := bytes.TrimSpace(f.v); len(t) > 0 && !bytes.Equal(t, []byte("null")) && !bytes.Equal(t, []byte("[]")) {
			bad = append(bad, f.name)
		}
	}
	if c.UseQALoRA {
		bad = append(bad, "use_qalora")
	}
	if c.LoraBias {
		bad = append(bad, "lora_bias")
	}
	return bad
}

// withDefaults fills the LoraConfig defaults that are not Go zero values,
// for writing.
func (c Config) withDefaults() Config {
	if c.MegatronCore == nil {
		mc := defaultMegatronCore
		c.MegatronCore = &mc
	}
	if c.QALoRAGroupSize == nil {
		g := defaultQALoRAGroupSize
		c.QALoRAGroupSize = &g
	}
	if len(c.LoftQConfig) == 0 {
		c.LoftQConfig = json.RawMessage("{}")
	}
	return c
}

// PEFT's LoraConfig defaults (peft/tuners/lora/config.py: r: int = 8,
// lora_alpha: int = 8, bias = "none", init_lora_weights = True), in one
// place: DefaultConfig, Normalize and the spec's defaults (spec's
// applyDefaults, which keeps lora_alpha at 2r instead) use these.
const (
	DefaultR               = 8
	DefaultLoraAlpha       = 8
	DefaultBias            = "none"
	DefaultInitLoraWeights = "true"
)

// DefaultConfig returns PEFT's LoraConfig defaults for a causal language model
// (r 8, alpha 8, no dropout, bias none, init true) with the given targets.
func DefaultConfig(targets ...string) Config {
	c := Config{TaskType: "CAUSAL_LM", TargetModules: TargetModules{List: targets}}
	c.Normalize()
	return c
}

// Normalize fills PEFT's defaults into empty fields.
func (c *Config) Normalize() {
	if c.PeftType == "" {
		c.PeftType = "LORA"
	}
	if c.Bias == "" {
		c.Bias = DefaultBias
	}
	if c.InitLoraWeights == "" {
		c.InitLoraWeights = DefaultInitLoraWeights
	}
	if c.R == 0 {
		c.R = DefaultR
	}
	if c.LoraAlpha == 0 {
		c.LoraAlpha = DefaultLoraAlpha
	}
}

// Validate checks the fields that do not depend on a model.
func (c Config) Validate() error {
	if c.PeftType != "" && c.PeftType != "LORA" {
		return fmt.Errorf("peft: peft_type %q is not LORA", c.PeftType)
	}
	if c.R < 0 {
		return fmt.Errorf("peft: r = %d must be positive", c.R)
	}
	for k, r := range c.RankPattern {
		if r <= 0 {
			return fmt.Errorf("peft: rank_pattern[%q] = %d must be positive", k, r)
		}
	}
	switch c.Bias {
	case "", "none", "all", "lora_only":
	default:
		return fmt.Errorf("peft: bias %q is not one of none, all, lora_only", c.Bias)
	}
	if c.LoraDropout < 0 || c.LoraDropout >= 1 {
		return fmt.Errorf("peft: lora_dropout %v is outside [0,1)", c.LoraDropout)
	}
	if c.TargetModules.Regex != "" {
		if _, err := regexp.Compile(c.TargetModules.Regex); err != nil {
			return fmt.Errorf("peft: target_modules regex %q: %w", c.TargetModules.Regex, err)
		}
	}
	if bad := c.unsupportedFields(); len(bad) > 0 {
		return fmt.Errorf("peft: %s set: loraflow implements plain LoRA, DoRA and rsLoRA only, not this PEFT feature", strings.Join(bad, ", "))
	}
	// The refusals of LoraConfig.__post_init__ (peft/tuners/lora/config.py):
	// a string target_modules (a regex or "all-linear") selects modules by
	// itself, so it "cannot be used" with layers_to_transform or
	// layers_pattern, and layers_pattern needs layers_to_transform.
	targetIsString := c.TargetModules.Regex != "" || c.TargetModules.AllLinear
	switch {
	case targetIsString && c.LayersToTransform != nil:
		return fmt.Errorf("peft: layers_to_transform cannot be used when target_modules is a string (%s): list the modules instead", c.TargetModules)
	case targetIsString && c.LayersPattern != nil:
		return fmt.Errorf("peft: layers_pattern cannot be used when target_modules is a string (%s): list the modules instead", c.TargetModules)
	case len(c.LayersPattern) > 0 && c.LayersToTransform == nil:
		return fmt.Errorf("peft: layers_pattern %v is set but layers_to_transform is not: PEFT requires both", []string(c.LayersPattern))
	}
	return nil
}

// patternKey returns the first pattern key (in sorted order) that matches
// module as PEFT's get_pattern_key does: the key must match a suffix of the
// module name that starts after a dot (or the whole name).
func patternKey(keys []string, module string) (string, bool) {
	sort.Strings(keys)
	for _, k := range keys {
		re, err := regexp.Compile(`^(?:.*\.)?(?:` + k + `)$`)
		if err != nil {
			if module == k || strings.HasSuffix(module, "."+k) {
				return k, true
			}
			continue
		}
		if re.MatchString(module) {
			return k, true
		}
	}
	return "", false
}

// Rank returns the LoRA rank for module (rank_pattern applied).
func (c Config) Rank(module string) int { return patternValue(c.RankPattern, module, c.R) }

// Alpha returns lora_alpha for module (alpha_pattern applied).
func (c Config) Alpha(module string) float64 {
	return patternValue(c.AlphaPattern, module, c.LoraAlpha)
}

// patternValue is the value of the pattern of m that matches module (see
// patternKey), or def when none does.
func patternValue[V any](m map[string]V, module string, def V) V {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	if k, ok := patternKey(keys, module); ok {
		return m[k]
	}
	return def
}

// Scale returns the factor applied to B·A for module: alpha/r, or alpha/√r
// with use_rslora, after rank_pattern and alpha_pattern.
func (c Config) Scale(module string) float64 {
	r := c.Rank(module)
	if r <= 0 {
		return 0
	}
	a := c.Alpha(module)
	if c.UseRSLoRA {
		return a / math.Sqrt(float64(r))
	}
	return a / float64(r)
}

var defaultLayersPattern = []string{"layers", "h", "block", "blocks", "layer"}

// LayerIndex extracts the transformer layer index from a module name
// ("model.layers.3.mlp.up_proj" → 3), using layers_pattern when set.
func (c Config) LayerIndex(module string) (int, bool) {
	pats := []string(c.LayersPattern)
	if len(pats) == 0 {
		pats = defaultLayersPattern
	}
	parts := strings.Split(module, ".")
	for i := 0; i+1 < len(parts); i++ {
		for _, p := range pats {
			if parts[i] == p {
				if n, err := strconv.Atoi(parts[i+1]); err == nil {
					return n, true
				}
			}
		}
	}
	return 0, false
}

// Targets reports whether module (a linear layer's full name such as
// "model.layers.0.self_attn.q_proj") is adapted, following PEFT's
// check_target_module_exists. isOutputHead marks the output head, which
// "all-linear" leaves out.
func (c Config) Targets(module string, isOutputHead bool) bool {
	if c.ExcludeModules != nil && c.ExcludeModules.matchPlain(module) {
		return false
	}
	if c.savedWhole(module) {
		return false
	}
	t := c.TargetModules
	switch {
	case t.AllLinear:
		if isOutputHead {
			return false
		}
		return c.layerAllowed(module)
	case t.Regex != "":
		re, err := regexp.Compile(`^(?:` + t.Regex + `)$`)
		return err == nil && re.MatchString(module)
	default:
		for _, k := range t.List {
			if module == k {
				return true
			}
		}
		found := false
		for _, k := range t.List {
			if strings.HasSuffix(module, "."+k) {
				found = true
				break
			}
		}
		return found && c.layerAllowed(module)
	}
}

func (c Config) layerAllowed(module string) bool {
	if len(c.LayersToTransform) == 0 {
		return true
	}
	idx, ok := c.LayerIndex(module)
	if !ok {
		return false
	}
	for _, l := range c.LayersToTransform {
		if l == idx {
			return true
		}
	}
	return false
}

// SavesModule reports whether module is listed in modules_to_save (suffix match),
// so that its weights are trained fully and saved in the adapter.
func (c Config) SavesModule(module string) bool {
	for _, k := range c.ModulesToSave {
		if module == k || strings.HasSuffix(module, "."+k) {
			return true
		}
	}
	return false
}

// savedWhole reports whether module is, or lies inside, a module of
// modules_to_save, which PEFT never adapts: check_target_module_exists
// (peft/tuners/tuners_utils.py) excludes a key matching
// re.match(rf"(^|.*\.){m}($|\..*)", key) for any m in modules_to_save,
// "as it is a guarantee for conflicts of behavior" with its wrapper.
func (c Config) savedWhole(module string) bool {
	for _, m := range c.ModulesToSave {
		re, err := regexp.Compile(`^(?:^|.*\.)(?:` + m + `)(?:$|\..*)`)
		if err != nil {
			if module == m || strings.HasSuffix(module, "."+m) || strings.HasPrefix(module, m+".") || strings.Contains(module, "."+m+".") {
				return true
			}
			continue
		}
		if re.MatchString(module) {
			return true
		}
	}
	return false
}

// TargetModules is PEFT's target_modules: a list of names (exact or suffix
// match), a regular expression (full match), or "all-linear".
type TargetModules struct {
	List      []string
	Regex     string
	AllLinear bool
}

// String renders the selection for messages.
func (t TargetModules) String() string {
	switch {
	case t.AllLinear:
		return `"all-linear"`
	case t.Regex != "":
		return strconv.Quote(t.Regex)
	default:
		b, _ := json.Marshal(t.List)
		return string(b)
	}
}

// IsEmpty reports whether nothing is selected.
func (t TargetModules) IsEmpty() bool { return !t.AllLinear && t.Regex == "" && len(t.List) == 0 }

func (t TargetModules) matchPlain(module string) bool {
	if t.Regex != "" {
		re, err := regexp.Compile(`^(?:` + t.Regex + `)$`)
		return err == nil && re.MatchString(module)
	}
	for _, k := range t.List {
		if module == k || strings.HasSuffix(module, "."+k) {
			return true
		}
	}
	return false
}

// MarshalJSON writes a list, or a string for a regex or "all-linear".
func (t TargetModules) MarshalJSON() ([]byte, error) {
	switch {
	case t.AllLinear:
		return []byte(`"all-linear"`), nil
	case t.Regex != "":
		return json.Marshal(t.Regex)
	case t.List == nil:
		return []byte("null"), nil
	default:
		return json.Marshal(t.List)
	}
}

// UnmarshalJSON accepts null, a string or a list of strings.
func (t *TargetModules) UnmarshalJSON(b []byte) error {
	*t = TargetModules{}
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if strings.EqualFold(s, "all-linear") {
			t.AllLinear = true
		} else {
			t.Regex = s
		}
		return nil
	}
	return json.Unmarshal(b, &t.List)
}

// InitLoraWeights is init_lora_weights: "true" (Kaiming-uniform A, zero B),
// "false" (random B too; for tests), "gaussian", or the data-driven "pissa",
// "pissa_niter_K" (randomized SVD) and "olora" (A and B from the base weight, trained against
// the residual). Other PEFT values (e.g. "loftq") load but are not trained.
// JSON true/false map to "true"/"false".
type InitLoraWeights string

// MarshalJSON writes booleans as JSON booleans.
func (v InitLoraWeights) MarshalJSON() ([]byte, error) {
	switch v {
	case "", "true":
		return []byte("true"), nil
	case "false":
		return []byte("false"), nil
	}
	return json.Marshal(string(v))
}

// UnmarshalJSON accepts a boolean or a string.
func (v *InitLoraWeights) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "true", "null":
		*v = "true"
		return nil
	case "false":
		*v = "false"
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("init_lora_weights: %w", err)
	}
	*v = InitLoraWeights(s)
	return nil
}

// IntList is a list of ints that also accepts a single int in JSON (as PEFT's layers_to_transform does).
type IntList []int

// UnmarshalJSON accepts null, an int or a list.
func (l *IntList) UnmarshalJSON(b []byte) error {
	xs, err := unmarshalOneOrList[int](b)
	if err != nil {
		return err
	}
	*l = xs
	return nil
}

// StringList is a list of strings that also accepts a single string in JSON.
type StringList []string

// UnmarshalJSON accepts null, a string or a list.
func (l *StringList) UnmarshalJSON(b []byte) error {
	xs, err := unmarshalOneOrList[string](b)
	if err != nil {
		return err
	}
	*l = xs
	return nil
}

// unmarshalOneOrList decodes null (nil), a single T or a list of T.
func unmarshalOneOrList[T any](b []byte) ([]T, error) {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	if len(b) > 0 && b[0] != '[' {
		var x T
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, err
		}
		return []T{x}, nil
	}
	var xs []T
	if err := json.Unmarshal(b, &xs); err != nil {
		return nil, err
	}
	return xs, nil
}

// MarshalJSON writes a single entry as a string, as PEFT configs usually do.
func (l StringList) MarshalJSON() ([]byte, error) {
	switch len(l) {
	case 0:
		return []byte("null"), nil
	case 1:
		return json.Marshal(l[0])
	}
	return json.Marshal([]string(l))
}
