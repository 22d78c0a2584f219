package merge

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// ErrMismatch is matched (errors.Is) by errors about adapters that do not
// fit the base checkpoint: unknown modules, wrong shapes, non-float tensors.
var ErrMismatch = errors.New("adapter does not match the base model")

// ErrNonFinite is matched by the error of a safe merge whose result holds a
// NaN or an infinity.
var ErrNonFinite = errors.New("merged weights are not finite")

// Weighted is one adapter to merge and its weight (1 merges it as trained;
// negative weights subtract).
type Weighted struct {
	Name    string // for reports and errors, e.g. the adapter folder
	Adapter *peft.Adapter
	Weight  float64
}

// contribution is one adapter's low-rank update of one base tensor:
// ΔW = alpha·B·A ([out, in]), or its transpose when fanInFanOut.
type contribution struct {
	adapter     string
	module      string
	a, b        []float32 // A [r, in], B [out, r]
	bt          []float32 // Bᵀ [r, out], for fan_in_fan_out layers
	r, in, out  int
	alpha       float32 // weight·scale
	fanInFanOut bool
}

// tensorPlan is the work on one base tensor.
type tensorPlan struct {
	name          string
	info          safetensors.TensorInfo
	contributions []contribution
	replacement   []float32 // a modules_to_save or bias parameter that replaces the base tensor
	replacedBy    string
	magnitude     []float32 // DoRA: W' = m·(W0+ΔW)/‖W0+ΔW‖ per output
	magnitudeFIFO bool      // outputs are the columns of the stored weight
}

// BaseTensorName finds the base tensor that a PEFT parameter (module +
// ".weight", or a plain parameter name) refers to among names: the name
// itself, or the name with a leading "transformer." or "model." removed or
// added. It reports false when none or more than one candidate exists.
func BaseTensorName(has func(string) bool, param string) (string, bool) {
	if has(param) {
		return param, true
	}
	var found []string
	for _, p := range []string{"transformer.", "model."} {
		if rest, ok := strings.CutPrefix(param, p); ok && has(rest) {
			found = append(found, rest)
		}
		if has(p + param) {
			found = append(found, p+param)
		}
	}
	if len(found) != 1 {
		return "", false
	}
	return found[0], true
}

// modelType reads model_type from dir/config.json ("" when absent).
func modelType(dir string) string {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return ""
	}
	var c struct {
		ModelType string `json:"model_type"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.ModelType
}

// conv1D tells whether a module's layer is a transformers Conv1D (weight
// stored [in, out]). PEFT decides fan_in_fan_out per layer, not from the
// config alone: src/peft/tuners/lora/layer.py, dispatch_default, sets
// fan_in_fan_out = False for a torch.nn.Linear ("fan_in_fan_out is set to
// True but the target module is `torch.nn.Linear`. Setting fan_in_fan_out
// to False.") and True for a Conv1D. The Conv1D layers of the families
// loraflow loads are GPT-2's c_attn, c_proj and c_fc (transformers
// models/gpt2/modeling_gpt2.py, GPT2Attention and GPT2MLP); GPT-2's lm_head
// is an nn.Linear.
func conv1D(gpt2 bool, module string) bool {
	if !gpt2 {
		return false
	}
	switch module[strings.LastIndexByte(module, '.')+1:] {
	case "c_attn", "c_proj", "c_fc":
		return true
	}
	return false
}

// plan matches every adapter tensor to a base tensor and checks shapes and
// dtypes. sign is +1 to merge and -1 to unmerge.
func plan(ckpt *safetensors.Checkpoint, baseDir string, adapters []Weighted, sign float64) (map[string]*tensorPlan, error) {
	names := ckpt.Names()
	has := func(n string) bool { _, ok := slices.BinarySearch(names, n); return ok }
	gpt2 := modelType(baseDir) == "gpt2"
	plans := map[string]*tensorPlan{}
	get := func(name string) (*tensorPlan, error) {
		if p, ok := plans[name]; ok {
			return p, nil
		}
		info, _ := ckpt.Info(name)
		switch info.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
		default:
			return nil, fmt.Errorf("merge: base tensor %q is %s; only F32, F16 and BF16 tensors can be merged into: %w", name, info.DType, ErrMismatch)
		}
		p := &tensorPlan{name: name, info: info}
		plans[name] = p
		return p, nil
	}
	for i, w := range adapters {
		a := w.Adapter
		label := w.Name
		if label == "" {
			label = fmt.Sprintf("adapter %d", i)
		}
		if a == nil {
			return nil, fmt.Errorf("merge: %s: no adapter", label)
		}
		if err := a.Check(); err != nil {
			return nil, fmt.Errorf("merge: %s: %w: %w", label, err, ErrMismatch)
		}
		if a.Config.UseDoRA {
			switch {
			case sign < 0:
				return nil, fmt.Errorf("merge: %s: a DoRA merge cannot be undone: W' = m·(W0+ΔW)/‖W0+ΔW‖ has lost ‖W0+ΔW‖; unmerge needs the base model: %w", label, ErrMismatch)
			case len(adapters) > 1:
				return nil, fmt.Errorf("merge: %s: a DoRA adapter must be merged alone (its magnitude rescales the whole weight): %w", label, ErrMismatch)
			case w.Weight != 1:
				return nil, fmt.Errorf("merge: %s: a DoRA adapter merges with weight 1 only, not %g: %w", label, w.Weight, ErrMismatch)
			}
		}
		for _, key := range a.Names() {
			module, kind, _ := peft.ParseKey(key)
			switch kind {
			case "lora_B":
				continue
			case "lora_magnitude_vector":
				if !a.Config.UseDoRA {
					return nil, fmt.Errorf("merge: %s: tensor %q is a DoRA magnitude but use_dora is false in adapter_config.json: %w", label, key, ErrMismatch)
				}
				continue
			case "":
				// A parameter saved whole (modules_to_save, trained bias): it
				// replaces the base tensor. Older PEFT versions kept a
				// ".modules_to_save" segment in the key. The bias of an
				// adapted layer is saved under PEFT's wrapper,
				// "<module>.base_layer.bias" (peft/tuners/lora/layer.py: the
				// LoRA layer holds the original as base_layer;
				// utils/save_and_load.py get_peft_model_state_dict keeps
				// every key containing "bias" for bias="all"), and is the
				// base checkpoint's "<module>.bias".
				module = peft.ParamName(strings.Replace(module, ".modules_to_save.", ".", 1))
				name, ok := BaseTensorName(has, module)
				if !ok {
					return nil, fmt.Errorf("merge: %s: tensor %q: the base checkpoint has no tensor %q: %w", label, key, module, ErrMismatch)
				}
				p, err := get(name)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", label, err)
				}
				if !slices.Equal(p.info.Shape, a.Shapes[key]) {
					return nil, fmt.Errorf("merge: %s: tensor %q has shape %v but base tensor %q has shape %v: %w", label, key, a.Shapes[key], name, p.info.Shape, ErrMismatch)
				}
				if p.replacement != nil {
					return nil, fmt.Errorf("merge: base tensor %q is replaced by both %s and %s: %w", name, p.replacedBy, label, ErrMismatch)
				}
				if len(p.contributions) > 0 {
					return nil, fmt.Errorf("merge: base tensor %q is both replaced by %s and adapted: %w", name, label, ErrMismatch)
				}
				p.replacement, p.replacedBy = a.Tensors[key], label
				continue
			}
			name, ok := BaseTensorName(has, module+".weight")
			if !ok {
				return nil, fmt.Errorf("merge: %s: module %q: the base checkpoint has no tensor %q: %w", label, module, module+".weight", ErrMismatch)
			}
			p, err := get(name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
			if p.replacement != nil {
				return nil, fmt.Errorf("merge: base tensor %q is both replaced by %s and adapted by %s: %w", name, p.replacedBy, label, ErrMismatch)
			}
			sa, sb := a.Shapes[key], a.Shapes[peft.KeyB(module)]
			c := contribution{
				adapter: label, module: module,
				a: a.Tensors[key], b: a.Tensors[peft.KeyB(module)],
				r: sa[0], in: sa[1], out: sb[0],
				alpha:       float32(sign * w.Weight * a.Config.Scale(module)),
				fanInFanOut: conv1D(gpt2, module),
			}
			if c.fanInFanOut {
				c.bt = make([]float32, c.r*c.out)
				for o := 0; o < c.out; o++ {
					for l := 0; l < c.r; l++ {
						c.bt[l*c.out+o] = c.b[o*c.r+l]
					}
				}
			}
			shape := p.info.Shape
			want := []int{c.out, c.in}
			if c.fanInFanOut {
				want = []int{c.in, c.out}
			}
			if !slices.Equal(shape, want) {
				layout := "[out, in]"
				if c.fanInFanOut {
					layout = "[in, out] (fan_in_fan_out)"
				}
				return nil, fmt.Errorf("merge: %s: module %q: lora_A %v and lora_B %v need base tensor %q of shape %v %s, but it is %v: %w",
					label, module, sa, sb, name, want, layout, shape, ErrMismatch)
			}
			p.contributions = append(p.contributions, c)
			if a.Config.UseDoRA {
				mag, ok := a.Tensors[peft.KeyMagnitude(module)]
				if !ok {
					return nil, fmt.Errorf("merge: %s: module %q: use_dora is set but %q is missing: %w", label, module, peft.KeyMagnitude(module), ErrMismatch)
				}
				if len(mag) != c.out {
					return nil, fmt.Errorf("merge: %s: tensor %q has %d values, the layer has %d outputs: %w", label, peft.KeyMagnitude(module), len(mag), c.out, ErrMismatch)
				}
				p.magnitude, p.magnitudeFIFO = mag, c.fanInFanOut
			}
		}
	}
	return plans, nil
}
