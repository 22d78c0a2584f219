package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/loraflow/loraflow/internal/atomicfile"

	"github.com/loraflow/loraflow/internal/safeio"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// File names inside an adapter folder.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
	keyPrefix   = "base_model.model."
)

// KeyA is the PEFT key of module's lora_A weight ([r, in]).
func KeyA(module string) string { return keyPrefix + module + ".lora_A.weight" }

// KeyB is the PEFT key of module's lora_B weight ([out, r]).
func KeyB(module string) string { return keyPrefix + module + ".lora_B.weight" }

// KeyMagnitude is the PEFT key of module's DoRA magnitude vector ([out]).
func KeyMagnitude(module string) string { return keyPrefix + module + ".lora_magnitude_vector" }

// KeyParam is the PEFT key of a plain parameter saved with the adapter (a
// bias with bias="all"/"lora_only", or a weight of a modules_to_save module),
// e.g. KeyParam("lm_head.weight") = "base_model.model.lm_head.weight".
func KeyParam(param string) string { return keyPrefix + param }

// KeyBias is the PEFT key of a module's bias saved with bias="all" or
// "lora_only". PEFT wraps an adapted layer, so its bias lives under
// "base_layer": "base_model.model.<module>.base_layer.bias"; a layer without
// LoRA keeps "base_model.model.<module>.bias".
func KeyBias(module string, adapted bool) string {
	if adapted {
		return keyPrefix + module + ".base_layer.bias"
	}
	return keyPrefix + module + ".bias"
}

// ParamName turns the module part of a plain key (from ParseKey) into the
// base model's parameter name, dropping PEFT's ".base_layer".
func ParamName(module string) string {
	return strings.Replace(module, ".base_layer.", ".", 1)
}

// ParseKey splits an adapter key into module and kind ("lora_A", "lora_B",
// "lora_magnitude_vector", or "" for plain parameters, whose module is then the
// full parameter name).
func ParseKey(key string) (module, kind string, ok bool) {
	rest, found := strings.CutPrefix(key, keyPrefix)
	if !found {
		return "", "", false
	}
	for _, k := range []string{".lora_A.weight", ".lora_B.weight"} {
		if m, ok := strings.CutSuffix(rest, k); ok {
			return m, k[1:7], true
		}
	}
	if m, ok := strings.CutSuffix(rest, ".lora_magnitude_vector"); ok {
		return m, "lora_magnitude_vector", true
	}
	return rest, "", true
}

// Adapter is a LoRA adapter: its config and its tensors under PEFT's key names.
type Adapter struct {
	Config  Config
	Tensors map[string][]float32
	Shapes  map[string][]int
}

// Modules returns the sorted names of the modules that carry lora_A/lora_B.
func (a *Adapter) Modules() []string {
	var out []string
	for k := range a.Tensors {
		if m, kind, ok := ParseKey(k); ok && kind == "lora_A" {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// Names returns the sorted tensor keys.
func (a *Adapter) Names() []string {
	out := make([]string, 0, len(a.Tensors))
	for k := range a.Tensors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Check verifies that every tensor has a shape whose product is its length
// and that lora_A/lora_B come in pairs with matching ranks.
func (a *Adapter) Check() error {
	for _, k := range a.Names() {
		shape, ok := a.Shapes[k]
		if !ok {
			return fmt.Errorf("peft: tensor %q has no shape", k)
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if n != len(a.Tensors[k]) {
			return fmt.Errorf("peft: tensor %q has %d values for shape %v", k, len(a.Tensors[k]), shape)
		}
		m, kind, ok := ParseKey(k)
		if !ok {
			return fmt.Errorf("peft: tensor %q does not start with %q", k, keyPrefix)
		}
		if kind == "lora_A" {
			sb := a.Shapes[KeyB(m)]
			if _, ok := a.Tensors[KeyB(m)]; !ok {
				return fmt.Errorf("peft: module %q has lora_A but no lora_B", m)
			}
			if len(shape) != 2 || len(sb) != 2 || shape[0] != sb[1] {
				return fmt.Errorf("peft: module %q: lora_A %v and lora_B %v do not share a rank", m, shape, sb)
			}
		}
		if kind == "lora_B" {
			if _, ok := a.Tensors[KeyA(m)]; !ok {
				return fmt.Errorf("peft: module %q has lora_B but no lora_A", m)
			}
		}
	}
	return nil
}

// MarshalConfig renders the config as adapter_config.json the way PEFT
// writes it (json.dumps(indent=2, sort_keys=True)): keys sorted, two-space
// indent, no final newline, float fields in Python's repr (0.0, 0.05),
// empty patterns as {}.
func MarshalConfig(c Config) ([]byte, error) {
	if c.RankPattern == nil {
		c.RankPattern = map[string]int{}
	}
	if c.AlphaPattern == nil {
		c.AlphaPattern = map[string]float64{}
	}
	if c.PeftType == "" {
		c.PeftType = "LORA"
	}
	c = c.withDefaults()
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("peft: encode %s: %w", ConfigFile, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("peft: encode %s: %w", ConfigFile, err)
	}
	fields["lora_dropout"] = json.RawMessage(pyFloat(c.LoraDropout))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil { // map keys are sorted
		return nil, fmt.Errorf("peft: encode %s: %w", ConfigFile, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// pyFloat formats v as Python's repr of a float does.
func pyFloat(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if e := strings.IndexByte(s, 'e'); e >= 0 {
		// Python: 1e-05, 1.5e-07; Go: 1e-05, 1.5e-07 (same two-digit exponent)
		return s
	}
	if !strings.ContainsAny(s, ".") && !strings.ContainsAny(s, "IN") {
		s += ".0"
	}
	return s
}

// Save writes adapter_config.json and adapter_model.safetensors (F32,
// metadata {"format":"pt"}) into dir, each atomically.
func (a *Adapter) Save(dir string) error {
	if err := a.Check(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	names := a.Names()
	tensors := make([]safetensors.Tensor, 0, len(names))
	for _, k := range names {
		data, err := safetensors.EncodeFloat32(safetensors.DType("F32"), a.Tensors[k])
		if err != nil {
			return fmt.Errorf("peft: encode %q: %w", k, err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: k, DType: safetensors.DType("F32"), Shape: append([]int(nil), a.Shapes[k]...), Data: data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	cfg, err := MarshalConfig(a.Config)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ConfigFile), cfg)
}

// MaxConfigBytes bounds adapter_config.json (PEFT's are about 1 KB; a
// rank_pattern for every layer of a large model stays far below it). A
// larger file, or one that is not a regular file, is refused unread.
const MaxConfigBytes = 4 << 20

// Load reads an adapter folder.
func Load(dir string) (*Adapter, error) {
	raw, err := safeio.ReadFile(filepath.Join(dir, ConfigFile), MaxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("peft: %w", err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("peft: %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, filepath.Join(dir, ConfigFile))
	}
	path := filepath.Join(dir, WeightsFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("peft: %w", err)
	}
	defer f.Close()
	a := &Adapter{Config: c, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		v, err := f.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("peft: %s: tensor %q: %w", path, name, err)
		}
		a.Tensors[name] = v
		a.Shapes[name] = append([]int(nil), info.Shape...)
	}
	if err := a.Check(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return a, nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	return nil
}
