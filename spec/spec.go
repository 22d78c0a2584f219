package spec

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/loraflow/loraflow/lora/peft"
)

// Spec is one pipeline run's description. It is the workflow's input, so it
// is plain data that round-trips through JSON.
type Spec struct {
	// Name is the registered model name the run publishes to.
	Name       string     `yaml:"name" json:"name"`
	BaseModel  string     `yaml:"base_model" json:"base_model"`
	Dataset    Dataset    `yaml:"dataset" json:"dataset"`
	LoRA       LoRA       `yaml:"lora" json:"lora"`
	Training   Training   `yaml:"training" json:"training"`
	Evaluation Evaluation `yaml:"evaluation" json:"evaluation"`
	Merge      bool       `yaml:"merge" json:"merge"`
	Signing    Signing    `yaml:"signing" json:"signing"`
	Registry   Registry   `yaml:"registry" json:"registry"`
	Carbon     Carbon     `yaml:"carbon" json:"carbon"`
	// SkipIfUnchanged ends the run early, publishing nothing, when the
	// dataset snapshot and base model equal the current champion's
	// (scheduled retraining sets it).
	SkipIfUnchanged bool `yaml:"skip_if_unchanged" json:"skip_if_unchanged"`
	// Timeouts tunes the activities' Temporal timeouts (Go duration strings).
	Timeouts Timeouts `yaml:"timeouts" json:"timeouts"`
	// Quantization is how the frozen base weights are held in training.
	Quantization Quantization `yaml:"quantization" json:"quantization"`
}

// Dataset names the data files and how to read them.
type Dataset struct {
	Files []string `yaml:"files" json:"files"`
	// Format is text, alpaca, chat or classification.
	Format string `yaml:"format" json:"format"`
	// ValidationFraction of the deduplicated examples goes to the held-out split.
	ValidationFraction float64 `yaml:"validation_fraction" json:"validation_fraction"`
	// MaxBadRows is how many invalid rows are skipped (and reported) before
	// the data is rejected as a whole; 0 makes every bad row fatal.
	MaxBadRows int   `yaml:"max_bad_rows" json:"max_bad_rows"`
	Seed       int64 `yaml:"seed" json:"seed"`
}

// LoRA carries PEFT's LoraConfig fields under PEFT's names.
type LoRA struct {
	R           int     `yaml:"r" json:"r"`
	LoraAlpha   float64 `yaml:"lora_alpha" json:"lora_alpha"`
	LoraDropout float64 `yaml:"lora_dropout" json:"lora_dropout"`
	// TargetModules is a list (suffix match), a regex or "all-linear"; when
	// unset, PEFT's default for the model type (q_proj, v_proj for Llama;
	// c_attn for GPT-2).
	TargetModules     TargetModules      `yaml:"target_modules" json:"target_modules,omitzero"`
	Bias              string             `yaml:"bias" json:"bias"`
	UseRSLoRA         bool               `yaml:"use_rslora" json:"use_rslora"`
	UseDoRA           bool               `yaml:"use_dora" json:"use_dora"`
	InitLoraWeights   InitLoraWeights    `yaml:"init_lora_weights" json:"init_lora_weights"`
	RankPattern       map[string]int     `yaml:"rank_pattern" json:"rank_pattern,omitempty"`
	AlphaPattern      map[string]float64 `yaml:"alpha_pattern" json:"alpha_pattern,omitempty"`
	LayersToTransform []int              `yaml:"layers_to_transform" json:"layers_to_transform,omitempty"`
	ModulesToSave     []string           `yaml:"modules_to_save" json:"modules_to_save,omitempty"`
	LoraPlusLRRatio   float64            `yaml:"loraplus_lr_ratio" json:"loraplus_lr_ratio,omitempty"`
}

// Training holds the optimisation settings.
type Training struct {
	Steps          int     `yaml:"steps" json:"steps"`
	Epochs         int     `yaml:"epochs" json:"epochs"`
	BatchSize      int     `yaml:"batch_size" json:"batch_size"`
	SeqLen         int     `yaml:"seq_len" json:"seq_len"`
	GradAccumSteps int     `yaml:"grad_accum_steps" json:"grad_accum_steps"`
	LearningRate   float64 `yaml:"learning_rate" json:"learning_rate"`
	Schedule       string  `yaml:"schedule" json:"schedule"`
	WarmupSteps    int     `yaml:"warmup_steps" json:"warmup_steps"`
	WeightDecay    float64 `yaml:"weight_decay" json:"weight_decay"`
	// MaxGradNorm clips the global gradient norm; 0 means 1.0, negative disables clipping.
	MaxGradNorm     float64 `yaml:"max_grad_norm" json:"max_grad_norm"`
	Seed            int64   `yaml:"seed" json:"seed"`
	CheckpointEvery int     `yaml:"checkpoint_every" json:"checkpoint_every"`
	// Precision is the arithmetic of the products against the frozen base
	// weights: "fp32" (exact) or "bf16" (frozen weights held in BF16 and
	// multiplied on the BF16 kernel where the CPU has one); see lora.LoadOptions.
	Precision string `yaml:"precision" json:"precision"`
}

// Quantization keeps the base model's block linear weights in 4 or 8 bits
// while the adapter trains (QLoRA); "none" keeps them as the checkpoint has
// them. The adapter is a standard PEFT adapter of the unquantized model.
type Quantization struct {
	Type        string `yaml:"type" json:"type"` // none, nf4, fp4, int8
	BlockSize   int    `yaml:"block_size" json:"block_size"`
	DoubleQuant *bool  `yaml:"double_quant" json:"double_quant"`
}

// Evaluation holds the gate's thresholds. Zero values disable a threshold.
type Evaluation struct {
	// MaxValLoss rejects an adapter whose held-out loss is above it.
	MaxValLoss float64 `yaml:"max_val_loss" json:"max_val_loss,omitempty"`
	// MinImprovement is the least relative drop in held-out loss versus the
	// base model (0.02 = 2%).
	MinImprovement float64 `yaml:"min_improvement" json:"min_improvement"`
	// MinAccuracy applies to classification data.
	MinAccuracy float64 `yaml:"min_accuracy" json:"min_accuracy,omitempty"`
	// ChampionMargin is by how much (relative held-out loss) the new adapter
	// must beat the current champion to take the champion alias.
	ChampionMargin float64 `yaml:"champion_margin" json:"champion_margin"`
	BatchSize      int     `yaml:"batch_size" json:"batch_size"`
	// EverySteps, when set, scores the held-out split every this many
	// training steps (at checkpoints), for the report's loss curve; 0: only
	// after training.
	EverySteps int `yaml:"every_steps" json:"every_steps,omitempty"`
}

// Signing names the key that signs attestations and the keys trusted when
// verifying them. Both are the worker's: a spec may only name a signing key
// the worker declares, and list keys it already trusts (see package trust).
type Signing struct {
	// Key is the name of a signing key the worker declares ("" = its default).
	Key         string   `yaml:"key" json:"key"`
	TrustedKeys []string `yaml:"trusted_keys" json:"trusted_keys,omitempty"`
}

// Registry is where the run publishes. The worker's operator declares the
// registries (and their credentials); a spec names one (see package trust).
type Registry struct {
	// Name is a registry the worker declares.
	Name string `yaml:"name" json:"name,omitempty"`
	// URI is file:///path (the embedded local registry, inside the worker's
	// roots) or the http(s):// URI of a registry the worker declares. It
	// never carries credentials (user:password@ is refused).
	URI string `yaml:"uri" json:"uri"`
}

// Carbon sets the emissions context.
type Carbon struct {
	// Region is an ISO country code (FRA) or a cloud region (aws:eu-west-3).
	Region string `yaml:"region" json:"region"`
	// PUE is the data centre's power usage effectiveness; 0 takes the
	// worker's (default 1.0).
	PUE float64 `yaml:"pue" json:"pue"`
	// IntensityGCO2PerKWh overrides the grid intensity table.
	IntensityGCO2PerKWh float64 `yaml:"intensity_gco2_per_kwh" json:"intensity_gco2_per_kwh,omitempty"`
}

// Timeouts are Go duration strings ("30s", "2h").
type Timeouts struct {
	Heartbeat string `yaml:"heartbeat" json:"heartbeat,omitempty"`
	Train     string `yaml:"train" json:"train,omitempty"`
}

//go:embed schema.json
var schemaJSON []byte

// SchemaJSON returns the JSON Schema of the spec file.
func SchemaJSON() []byte { return bytes.Clone(schemaJSON) }

var compiledSchema = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		panic("spec: embedded schema.json: " + err.Error())
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("loraflow-spec.json", doc); err != nil {
		panic("spec: embedded schema.json: " + err.Error())
	}
	return c.MustCompile("loraflow-spec.json")
}()

// MaxFileSize bounds a spec file (and the YAML handed to [Parse]): a spec is
// untrusted input and a real one is a few kilobytes.
const MaxFileSize = 1 << 20

// errTooLarge names the spec and the bound.
func errTooLarge(name string) error {
	return fmt.Errorf("spec: %s is larger than %d bytes (MaxFileSize); a spec names its model and data files, it does not hold them", name, MaxFileSize)
}

// Load reads, validates and strictly decodes the spec file at path, fills in
// defaults and resolves relative paths against the file's folder. The file
// is read only up to MaxFileSize (+1 byte to tell a larger one).
func Load(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("spec: reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, errTooLarge(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	s, err := Parse(data, abs)
	if err != nil {
		return nil, err
	}
	s.resolvePaths(filepath.Dir(abs))
	return s, nil
}

// Parse validates and strictly decodes spec YAML of at most MaxFileSize
// bytes; name is used in messages. Paths are left as written.
func Parse(data []byte, name string) (*Spec, error) {
	if len(data) > MaxFileSize {
		return nil, errTooLarge(name)
	}
	var generic any
	if err := yaml.Unmarshal(data, &generic); err != nil {
		return nil, fmt.Errorf("spec: %s: %w", name, err)
	}
	jsonable, err := toJSONValue(generic)
	if err != nil {
		return nil, fmt.Errorf("spec: %s: %w", name, err)
	}
	if err := compiledSchema.Validate(jsonable); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("spec: %s does not match the spec schema:\n%s", name, indent(ve.Error()))
		}
		return nil, fmt.Errorf("spec: %s: %w", name, err)
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("spec: %s: %w", name, err)
	}
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("spec: %s: %w", name, err)
	}
	return &s, nil
}

// Normalize fills in defaults and checks a spec that did not come through
// Load (a Schedule's action, another client): paths must be absolute.
// It is deterministic, so workflows may call it.
func (s *Spec) Normalize() error {
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	paths := append([]string{s.BaseModel}, s.Dataset.Files...)
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("spec: path %q is not absolute (load specs with spec.Load, which resolves paths against the spec file)", p)
		}
	}
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}

// toJSONValue turns YAML's decoded values into the types a JSON decoder
// would produce, so that the JSON Schema validator sees JSON.
func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(normalize(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	default:
		return v
	}
}

// applyDefaults is the one home of the spec's defaults; schema.json states
// the constant ones as "default" and TestSchemaMatchesGoTypes keeps the two
// equal. Spec.PEFT and Spec.TrainConfig hand the engine filled-in values, so
// peft.Config.Normalize and lora.TrainConfig's own defaults (for callers of
// the engine that bypass the spec) never apply to a spec's run.
//
// lora_alpha defaults to 2r, not to PEFT's LoraConfig default of 8
// (lora_alpha: int = field(default=8) in peft/tuners/lora/config.py): specs
// written so far rely on the scale alpha/r = 2, and the tests pin it.
func (s *Spec) applyDefaults() {
	d := &s.Dataset
	if d.ValidationFraction == 0 {
		d.ValidationFraction = 0.1
	}
	l := &s.LoRA // PEFT's defaults (lora/peft), but lora_alpha
	if l.R == 0 {
		l.R = peft.DefaultR
	}
	if l.LoraAlpha == 0 {
		l.LoraAlpha = float64(2 * l.R)
	}
	if l.Bias == "" {
		l.Bias = peft.DefaultBias
	}
	if l.InitLoraWeights.InitLoraWeights == "" {
		l.InitLoraWeights.InitLoraWeights = peft.DefaultInitLoraWeights
	}
	t := &s.Training
	if t.BatchSize == 0 {
		t.BatchSize = 8
	}
	if t.SeqLen == 0 {
		t.SeqLen = 128
	}
	if t.GradAccumSteps == 0 {
		t.GradAccumSteps = 1
	}
	if t.LearningRate == 0 {
		t.LearningRate = 1e-3
	}
	if t.Schedule == "" {
		t.Schedule = "cosine"
	}
	if t.CheckpointEvery == 0 {
		t.CheckpointEvery = 25
	}
	if t.Steps == 0 && t.Epochs == 0 {
		t.Epochs = 1
	}
	if t.Precision == "" {
		t.Precision = "fp32"
	}
	q := &s.Quantization
	if q.Type == "" {
		q.Type = "none"
	}
	if q.BlockSize == 0 {
		q.BlockSize = 64
	}
	if q.DoubleQuant == nil {
		q.DoubleQuant = new(bool)
		*q.DoubleQuant = true
	}
	if s.Evaluation.BatchSize == 0 {
		s.Evaluation.BatchSize = t.BatchSize
	}
	if s.Timeouts.Heartbeat == "" {
		s.Timeouts.Heartbeat = "60s"
	}
	if s.Timeouts.Train == "" {
		s.Timeouts.Train = "6h"
	}
}

// Validate checks what the schema cannot express.
func (s *Spec) Validate() error {
	if s.Training.WarmupSteps > 0 && s.Training.Steps > 0 && s.Training.WarmupSteps > s.Training.Steps {
		return fmt.Errorf("training.warmup_steps (%d) exceeds training.steps (%d)", s.Training.WarmupSteps, s.Training.Steps)
	}
	if u, err := url.Parse(s.Registry.URI); err == nil && u.User != nil {
		return errors.New("registry.uri: a URI with credentials (user:password@) is refused: they would travel in workflow inputs, schedules and provenance; the worker reads registry credentials from its environment")
	}
	for _, t := range []struct{ name, value string }{{"timeouts.heartbeat", s.Timeouts.Heartbeat}, {"timeouts.train", s.Timeouts.Train}} {
		if d, err := time.ParseDuration(t.value); err != nil || d <= 0 {
			return fmt.Errorf("%s: %q is not a positive duration", t.name, t.value)
		}
	}
	return nil
}

func (s *Spec) resolvePaths(dir string) {
	abs := func(p string) string {
		p = strings.TrimPrefix(p, "file://")
		if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") || strings.HasPrefix(p, "env:") {
			return p
		}
		return filepath.Join(dir, p)
	}
	s.BaseModel = abs(s.BaseModel)
	for i, f := range s.Dataset.Files {
		s.Dataset.Files[i] = abs(f)
	}
	// Signing.Key is a name of the worker's key, not a path: left as written.
	for i, k := range s.Signing.TrustedKeys {
		s.Signing.TrustedKeys[i] = abs(k)
	}
	if strings.HasPrefix(s.Registry.URI, "file://") {
		p := strings.TrimPrefix(s.Registry.URI, "file://")
		if !filepath.IsAbs(p) {
			s.Registry.URI = "file://" + filepath.Join(dir, p)
		}
	}
}

// Digest is the sha256 of the spec's canonical JSON, recorded in provenance
// and registry tags.
func (s *Spec) Digest() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
