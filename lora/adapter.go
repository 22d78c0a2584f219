package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/loraflow/loraflow/lora/peft"
)

// trainable is a parameter the optimizer updates.
type trainable[T float] struct {
	p       *param[T]
	key     string  // name in the adapter / checkpoint
	lrScale float64 // LoRA+: B gets loraplus_lr_ratio
	decay   bool
}

func moduleOf(paramName string) string {
	if i := strings.LastIndexByte(paramName, '.'); i >= 0 {
		return paramName[:i]
	}
	return paramName
}

// moduleList renders the linear layers for error messages.
func moduleList[T float](n *net[T]) string {
	// Grouped by the module name that target_modules matches (its last
	// component), with how many layers have it: a 28-layer model lists 8
	// names, not 197.
	type group struct {
		name   string
		count  int
		shapes []string
	}
	var groups []*group
	byName := map[string]*group{}
	for _, l := range n.linears() {
		name := l.module[strings.LastIndexByte(l.module, '.')+1:]
		g := byName[name]
		if g == nil {
			g = &group{name: name}
			byName[name] = g
			groups = append(groups, g)
		}
		g.count++
		if shape := fmt.Sprintf("[%d→%d]", l.in, l.out); !slices.Contains(g.shapes, shape) {
			g.shapes = append(g.shapes, shape)
		}
	}
	var names []string
	for _, g := range groups {
		s := g.name + " " + strings.Join(g.shapes, " ")
		if g.count > 1 {
			s += fmt.Sprintf(" ×%d", g.count)
		}
		names = append(names, s)
	}
	return strings.Join(names, ", ")
}

// initLoRA attaches fresh LoRA branches to the layers cfg selects and marks
// the parameters that bias and modules_to_save make trainable. It returns the
// trainable parameters in a fixed order.
func initLoRA[T float](n *net[T], cfg peft.Config, seed int64, loraPlusRatio float64) ([]trainable[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, &InputError{Kind: KindBadConfig, Msg: "adapter config", Err: err}
	}
	method, err := initMethod(cfg.InitLoraWeights)
	if err != nil {
		return nil, err
	}
	if cfg.TargetModules.IsEmpty() {
		return nil, inputErr(KindTargetModuleNotFound, "target_modules is empty; linear layers: %s", moduleList(n))
	}
	// A layer index the model lacks would otherwise surface as "matches no
	// linear layer": name the field and the model's layer range instead.
	for _, li := range cfg.LayersToTransform {
		if li < 0 || li >= n.cfg.Layers {
			return nil, inputErr(KindBadConfig, "layers_to_transform %v: layer %d does not exist; the model has %d layers (0–%d)",
				[]int(cfg.LayersToTransform), li, n.cfg.Layers, n.cfg.Layers-1)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x1a7a))
	var out []trainable[T]
	matched := 0
	for _, l := range n.linears() {
		if !cfg.Targets(l.module, l.isHead) {
			continue
		}
		matched++
		r := cfg.Rank(l.module)
		if r > min(l.in, l.out) {
			return nil, inputErr(KindRankTooLarge, "r = %d is larger than min(in, out) = %d of %s [%d→%d]", r, min(l.in, l.out), l.module, l.in, l.out)
		}
		lb := &loraBranch[T]{r: r, scale: T(cfg.Scale(l.module)), dropout: cfg.LoraDropout, tmp: &n.ws.loraTmp, duTmp: &n.ws.loraDu,
			a: newParam[T](peft.KeyA(l.module), []int{r, l.in}), b: newParam[T](peft.KeyB(l.module), []int{l.out, r})}
		switch method {
		case "pissa", "olora":
			l.lora = lb
			if err := initFromWeights(n, l, cfg.Scale(l.module), method, pissaNiter(string(cfg.InitLoraWeights)), rng); err != nil {
				return nil, err
			}
		case "gaussian":
			std := 1 / float64(r)
			for i := range lb.a.w {
				lb.a.w[i] = T(rng.NormFloat64() * std)
			}
		default: // Kaiming-uniform with a=√5, as nn.Linear and PEFT: U(±1/√in)
			bound := 1 / math.Sqrt(float64(l.in))
			for i := range lb.a.w {
				lb.a.w[i] = T((rng.Float64()*2 - 1) * bound)
			}
			if cfg.InitLoraWeights == "false" {
				bound := 1 / math.Sqrt(float64(r))
				for i := range lb.b.w {
					lb.b.w[i] = T((rng.Float64()*2 - 1) * bound)
				}
			}
		}
		l.lora = lb
		out = append(out, trainable[T]{p: lb.a, key: lb.a.name, lrScale: 1, decay: true})
		ratio := loraPlusRatio
		if ratio <= 0 {
			ratio = 1
		}
		out = append(out, trainable[T]{p: lb.b, key: lb.b.name, lrScale: ratio, decay: true})
		if cfg.UseDoRA {
			// As PEFT's LoRA+ optimizer (1-D parameters join B's group) and the
			// HF Trainer (decay on every parameter but biases and norms).
			d := newDoRA(l, peft.KeyMagnitude(l.module))
			out = append(out, trainable[T]{p: d.mag, key: d.mag.name, lrScale: ratio, decay: true})
		}
	}
	if matched == 0 {
		return nil, inputErr(KindTargetModuleNotFound, "target_modules %s matches no linear layer; linear layers: %s", cfg.TargetModules, moduleList(n))
	}
	// modules_to_save: a saved head that is tied gets its own copy.
	if cfg.SavesModule("lm_head") && n.head.w == n.embed {
		w := newParam[T]("lm_head.weight", n.embed.shape)
		copy(w.w, n.embed.values())
		n.head.w = w
		n.params = append(n.params, w)
	}
	seen := map[*param[T]]bool{}
	for _, t := range out {
		seen[t.p] = true
	}
	for _, p := range n.params {
		mod := moduleOf(p.name)
		isBias := strings.HasSuffix(p.name, ".bias")
		keep := trainsBesideLoRA(cfg, p.name, func(mod string) bool {
			l := n.findLinear(mod)
			return l != nil && l.lora != nil
		})
		if keep && !seen[p] {
			seen[p] = true
			// the clone shares the base model's values: train a copy
			p.ownCopy()
			key := peft.KeyParam(p.name)
			if isBias {
				l := n.findLinear(mod)
				key = peft.KeyBias(mod, l != nil && l.lora != nil)
			}
			out = append(out, trainable[T]{p: p, key: key, lrScale: 1, decay: len(p.shape) >= 2})
		}
	}
	return out, nil
}

// trainsBesideLoRA reports whether cfg trains the base parameter name
// itself: a module of modules_to_save, or a bias under bias "all" or, with
// "lora_only", of a module that has a LoRA branch (hasLoRA).
func trainsBesideLoRA(cfg peft.Config, name string, hasLoRA func(module string) bool) bool {
	if cfg.SavesModule(moduleOf(name)) {
		return true
	}
	if strings.HasSuffix(name, ".bias") {
		switch cfg.Bias {
		case "all":
			return true
		case "lora_only":
			return hasLoRA(moduleOf(name))
		}
	}
	return false
}

// fullTrainables makes every base parameter trainable.
func fullTrainables[T float](n *net[T]) []trainable[T] {
	var out []trainable[T]
	for _, p := range n.params {
		out = append(out, trainable[T]{p: p, key: p.name, lrScale: 1, decay: len(p.shape) >= 2})
	}
	return out
}

// applyAdapter attaches a saved adapter's LoRA branches and replaces the
// parameters it carries (biases, modules_to_save), checking every shape.
func applyAdapter[T float](n *net[T], a *peft.Adapter) error {
	if a == nil {
		return nil
	}
	if err := a.Check(); err != nil {
		return &InputError{Kind: KindAdapterMismatch, Msg: "adapter", Err: err}
	}
	names := a.Names()
	sort.Strings(names)
	for _, key := range names {
		mod, kind, ok := peft.ParseKey(key)
		if !ok {
			return inputErr(KindAdapterMismatch, "adapter tensor %q does not start with base_model.model.", key)
		}
		shape := a.Shapes[key]
		switch kind {
		case "lora_A":
			l := n.findLinear(mod)
			if l == nil {
				return inputErr(KindAdapterMismatch, "adapter module %q is not a linear layer of this %s model; linear layers: %s", mod, n.cfg.ModelType, moduleList(n))
			}
			sb := a.Shapes[peft.KeyB(mod)]
			if len(shape) != 2 || shape[1] != l.in || len(sb) != 2 || sb[0] != l.out {
				return inputErr(KindAdapterMismatch, "adapter module %q: lora_A %v and lora_B %v do not fit a layer [%d→%d] (A must be [r,%d], B [%d,r])", mod, shape, sb, l.in, l.out, l.in, l.out)
			}
			r := shape[0]
			lb := &loraBranch[T]{r: r, scale: T(a.Config.Scale(mod)),
				a: &param[T]{name: key, shape: shape, w: fromFloat32[T](a.Tensors[key])},
				b: &param[T]{name: peft.KeyB(mod), shape: sb, w: fromFloat32[T](a.Tensors[peft.KeyB(mod)])}}
			if a.Config.Rank(mod) != r {
				// The tensors decide the rank; the scale still follows the config's alpha.
				lb.scale = T(scaleFor(a.Config, mod, r))
			}
			l.lora = lb
		case "lora_B", "lora_magnitude_vector":
		case "":
			name := peft.ParamName(mod)
			var p *param[T]
			if name == "lm_head.weight" && n.head.w == n.embed {
				p = &param[T]{name: name, shape: n.embed.shape}
				n.head.w = p
			} else {
				p = n.findParam(name)
			}
			if p == nil {
				return inputErr(KindAdapterMismatch, "adapter tensor %q names no parameter of the model", key)
			}
			if !equalShape(p.shape, shape) {
				return inputErr(KindAdapterMismatch, "adapter tensor %q has shape %v, the model's is %v", key, shape, p.shape)
			}
			p.w, p.lp = fromFloat32[T](a.Tensors[key]), nil
		default:
			return inputErr(KindAdapterMismatch, "adapter tensor %q (%s) is not supported", key, kind)
		}
	}
	return applyMagnitudes(n, a)
}

func scaleFor(c peft.Config, module string, r int) float64 {
	alpha := c.Alpha(module)
	if c.UseRSLoRA {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// exportAdapter collects the trained tensors as a PEFT adapter.
func exportAdapter[T float](cfg peft.Config, tr []trainable[T], isGPT2 bool) *peft.Adapter {
	c := cfg
	c.Normalize()
	if c.TaskType == "" {
		c.TaskType = "CAUSAL_LM"
	}
	if isGPT2 {
		c.FanInFanOut = true
	}
	c.InferenceMode = true // as PeftModel.save_pretrained writes it
	a := &peft.Adapter{Config: c, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, t := range tr {
		a.Tensors[t.key] = toFloat32(t.p.w)
		a.Shapes[t.key] = append([]int(nil), t.p.shape...)
	}
	return a
}
