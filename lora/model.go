package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loraflow/loraflow/internal/atomicfile"

	"github.com/loraflow/loraflow/lora/safetensors"
)

// Sequence is one training or evaluation example as token IDs. The loss is
// taken only on predicting the tokens at positions ≥ PromptLen (0: all) and,
// when Loss is set (one flag per token), only where Loss is true: a chat's
// assistant turns, as TRL's SFTTrainer with assistant_only_loss.
type Sequence struct {
	Tokens    []int
	PromptLen int
	Loss      []bool
}

// ModuleInfo describes a linear layer that LoRA can adapt.
type ModuleInfo struct {
	Name    string // Hugging Face module path, e.g. "model.layers.0.self_attn.q_proj"
	In, Out int
	Conv1D  bool // weight stored [in, out] (GPT-2)
	IsHead  bool // the output head (left out by "all-linear")
}

// Model is a loaded base model; its weights are float32 and read-only except
// in full fine-tuning, which updates them in place.
type Model struct {
	cfg ModelConfig
	net *net[float32]
}

// Config returns the model's architecture.
func (m *Model) Config() ModelConfig { return m.cfg }

// LinearModules lists the linear layers in model order.
func (m *Model) LinearModules() []ModuleInfo {
	var out []ModuleInfo
	for _, l := range m.net.linears() {
		out = append(out, ModuleInfo{Name: l.module, In: l.in, Out: l.out, Conv1D: l.conv1d, IsHead: l.isHead})
	}
	return out
}

// NumParams returns the number of distinct weight values.
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.net.params {
		n += p.size()
	}
	return n
}

// TensorNames returns the checkpoint tensor names of the model.
func (m *Model) TensorNames() []string {
	var out []string
	for _, p := range m.net.params {
		out = append(out, p.name)
	}
	return out
}

// Tensor returns a copy of a weight by its checkpoint name.
func (m *Model) Tensor(name string) ([]float32, []int, bool) {
	p := m.net.findParam(name)
	if p == nil {
		return nil, nil, false
	}
	return append([]float32(nil), p.values()...), append([]int(nil), p.shape...), true
}

// tensorReader is what LoadModel needs from a checkpoint folder.
type tensorReader interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
	Float32(name string) ([]float32, error)
	Close() error
}

// LoadModel reads a Hugging Face checkpoint folder: config.json and
// model.safetensors (or a sharded checkpoint with its index).
func LoadModel(dir string) (*Model, error) { return LoadModelWith(dir, LoadOptions{}) }

// LoadModelWith is LoadModel with the frozen weights kept as o says (see
// frozen.go): 16-bit checkpoint weights always stay 16 bits.
func LoadModelWith(dir string, o LoadOptions) (*Model, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	raw, err := readConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &InputError{Kind: KindCorruptCheckpoint, Msg: fmt.Sprintf("%s has no config.json", dir), Err: err}
		}
		return nil, fmt.Errorf("lora: %w", err)
	}
	cfg, err := ParseModelConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, filepath.Join(dir, "config.json"))
	}
	if err := checkModelFits(cfg, o.weightScale()); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, filepath.Join(dir, "config.json"))
	}
	if err := readGenerationConfig(dir, &cfg); err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, &InputError{Kind: KindCorruptCheckpoint, Msg: fmt.Sprintf("open weights in %s", dir), Err: err}
	}
	defer ck.Close()
	return loadFrom(cfg, ck, dir, o)
}

// maxGenerationConfig bounds generation_config.json (real ones are < 1 KiB).
const maxGenerationConfig = 1 << 20

// readGenerationConfig takes the end-of-sequence ids from the folder's
// generation_config.json when it has one: transformers' GenerationConfig
// stops at any id of its eos_token_id (an id or a list: Llama 3.x,
// Qwen2.5 and Gemma list several), and its value overrides config.json's.
func readGenerationConfig(dir string, cfg *ModelConfig) error {
	path := filepath.Join(dir, "generation_config.json")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxGenerationConfig+1))
	if err != nil {
		return fmt.Errorf("lora: %s: %w", path, err)
	}
	if len(raw) > maxGenerationConfig {
		return inputErr(KindBadConfig, "%s is larger than %d bytes", path, maxGenerationConfig)
	}
	var g struct {
		Eos any `json:"eos_token_id"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return inputErr(KindBadConfig, "%s: %v", path, err)
	}
	first, ids := firstTokenID(g.Eos)
	for _, id := range ids {
		if id < 0 || id >= cfg.VocabSize {
			return inputErr(KindBadConfig, "%s: eos_token_id %d is outside the vocabulary [0,%d)", path, id, cfg.VocabSize)
		}
	}
	if len(ids) > 0 {
		cfg.EosTokenID, cfg.EosTokenIDs = first, ids
	}
	return nil
}

// StopTokens are the ids generation ends at: every end-of-sequence id of
// config.json and generation_config.json.
func (m *Model) StopTokens() []int {
	if len(m.cfg.EosTokenIDs) > 0 {
		return append([]int(nil), m.cfg.EosTokenIDs...)
	}
	if m.cfg.EosTokenID >= 0 {
		return []int{m.cfg.EosTokenID}
	}
	return nil
}

func loadFrom(cfg ModelConfig, r tensorReader, dir string, o LoadOptions) (*Model, error) {
	names := map[string]bool{}
	for _, n := range r.Names() {
		names[n] = true
	}
	resolve := func(name string) (string, bool) {
		if names[name] {
			return name, true
		}
		// GPT-2 checkpoints saved from GPT2Model have no "transformer." prefix.
		if s, ok := strings.CutPrefix(name, "transformer."); ok && names[s] {
			return s, true
		}
		return "", false
	}
	src := func(name string, shape []int) ([]float32, error) {
		actual, ok := resolve(name)
		if !ok {
			return nil, inputErr(KindMissingTensor, "%s: tensor %q is missing (%s with %d layers)", dir, name, cfg.ModelType, cfg.Layers)
		}
		info, _ := r.Info(actual)
		if !equalShape(info.Shape, shape) {
			return nil, inputErr(KindCorruptCheckpoint, "%s: tensor %q has shape %v, config.json implies %v", dir, actual, info.Shape, shape)
		}
		v, err := r.Float32(actual)
		if err != nil {
			return nil, &InputError{Kind: KindCorruptCheckpoint, Msg: fmt.Sprintf("%s: tensor %q", dir, actual), Err: err}
		}
		return v, nil
	}
	n, err := buildNet[float32](cfg, src, checkpointLow(r, o, resolve, dir))
	if err != nil {
		return nil, err
	}
	return &Model{cfg: cfg, net: n}, nil
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// NewModel makes a model of cfg with random weights (normal, std 0.02; norm
// weights 1, biases 0), deterministic in seed. Zero fields of cfg get the
// defaults of the model type.
func NewModel(cfg ModelConfig, seed int64) (*Model, error) {
	return NewModelWith(cfg, seed, LoadOptions{})
}

// randomSource makes NewModel's weights, tensor by tensor in build order.
func randomSource(cfg ModelConfig, seed int64) weightSource {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x10a1))
	return func(name string, shape []int) ([]float32, error) {
		size := 1
		for _, d := range shape {
			size *= d
		}
		v := make([]float32, size)
		switch {
		case strings.HasSuffix(name, ".bias"):
		case strings.Contains(name, "norm") || strings.Contains(name, "ln_"):
			if !cfg.Gemma { // Gemma's norms multiply by 1+w
				for i := range v {
					v[i] = 1
				}
			}
		default:
			std := 0.02
			if strings.HasSuffix(name, "o_proj.weight") || strings.HasSuffix(name, "down_proj.weight") || strings.HasSuffix(name, "c_proj.weight") {
				std /= math.Sqrt(2 * float64(cfg.Layers))
			}
			for i := range v {
				v[i] = float32(rng.NormFloat64() * std)
			}
		}
		return v, nil
	}
}

func (c ModelConfig) withDefaults() ModelConfig {
	// The switches a model type always has (transformers' definitions).
	switch c.ModelType {
	case "qwen2":
		c.QKVBias = true
	case "qwen3":
		c.QKNorm = true
	case "gemma2", "gemma3_text":
		c.Gemma = true
		c.QKNorm = c.ModelType == "gemma3_text"
	case "phi3":
		c.Fused = true
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.NormEps == 0 {
		if c.ModelType == "gpt2" {
			c.NormEps = 1e-5
		} else {
			c.NormEps = 1e-6
		}
	}
	if c.RopeTheta == 0 && c.ModelType != "gpt2" {
		c.RopeTheta = 10000
	}
	if c.ModelType == "gpt2" {
		c.TieWordEmbeddings = true
		if c.Intermediate == 0 {
			c.Intermediate = 4 * c.Hidden
		}
	}
	return c
}

// Save writes the model as a Hugging Face folder: config.json and
// model.safetensors (F32; a tied head is not written twice).
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	ps := append([]*param[float32](nil), m.net.params...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	var ts []safetensors.Tensor
	for _, p := range ps {
		b, err := safetensors.EncodeFloat32(safetensors.DType("F32"), p.values())
		if err != nil {
			return fmt.Errorf("lora: encode %q: %w", p.name, err)
		}
		ts = append(ts, safetensors.Tensor{Name: p.name, DType: safetensors.DType("F32"), Shape: p.shape, Data: b})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	cfg, err := m.cfg.MarshalHF()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "config.json"), append(cfg, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	return nil
}
