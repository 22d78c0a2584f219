package merge

import (
	"context"
	"fmt"
	"strings"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/combine"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// InitFromBase prepares PiSSA or OLoRA training (cfg.InitLoraWeights
// "pissa" or "olora"): for every module of the base model that cfg targets
// it computes the initial factors from the base weight (combine.PiSSA or
// combine.OLoRA), and writes to residualDir the residual base model, the
// base with W0 replaced by W0 − s·B₀·A₀ (a streamed unmerge of the initial
// adapter). Training then starts from the returned adapter on the residual
// model; the initial adapter is what combine.ConvertMutatedInit needs to
// turn the trained adapter into a plain LoRA for the original base.
// modules are the base model's linear layers (lora.Model.LinearModules).
func InitFromBase(ctx context.Context, baseDir, residualDir string, cfg peft.Config, modules []lora.ModuleInfo, opts Options) (*peft.Adapter, *Report, error) {
	method := strings.ToLower(string(cfg.InitLoraWeights))
	var initFn func([]float32, int, int, int, float64, bool) (combine.Init, error)
	switch method {
	case "pissa":
		initFn = combine.PiSSA
	case "olora":
		initFn = combine.OLoRA
	default:
		return nil, nil, fmt.Errorf("init: init_lora_weights %q is not pissa or olora", cfg.InitLoraWeights)
	}
	ckpt, err := safetensors.OpenDir(baseDir)
	if err != nil {
		return nil, nil, fmt.Errorf("init: base checkpoint %s: %w", baseDir, err)
	}
	defer ckpt.Close()
	names := map[string]bool{}
	for _, n := range ckpt.Names() {
		names[n] = true
	}
	has := func(n string) bool { return names[n] }
	gpt2 := modelType(baseDir) == "gpt2"
	a := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, mi := range modules {
		if !cfg.Targets(mi.Name, mi.IsHead) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		name, ok := BaseTensorName(has, mi.Name+".weight")
		if !ok {
			return nil, nil, asInputError(fmt.Errorf("init: module %q: the base checkpoint has no tensor %q: %w", mi.Name, mi.Name+".weight", ErrMismatch))
		}
		w, err := ckpt.Float32(name)
		if err != nil {
			return nil, nil, fmt.Errorf("init: tensor %q: %w", name, err)
		}
		r, scale := cfg.Rank(mi.Name), cfg.Scale(mi.Name)
		// Per layer, as PEFT's dispatch_default decides it (see conv1D).
		fifo := mi.Conv1D
		in, err := initFn(w, mi.Out, mi.In, r, scale, fifo)
		if err != nil {
			return nil, nil, asInputError(fmt.Errorf("init: module %q: %w: %w", mi.Name, err, ErrMismatch))
		}
		a.Tensors[peft.KeyA(mi.Name)], a.Shapes[peft.KeyA(mi.Name)] = in.A, []int{r, mi.In}
		a.Tensors[peft.KeyB(mi.Name)], a.Shapes[peft.KeyB(mi.Name)] = in.B, []int{mi.Out, r}
	}
	if len(a.Tensors) == 0 {
		return nil, nil, asInputError(&lora.InputError{Kind: lora.KindTargetModuleNotFound, Msg: fmt.Sprintf("target_modules %s matches no linear layer of %s", cfg.TargetModules.String(), baseDir)})
	}
	if gpt2 {
		a.Config.FanInFanOut = true
	}
	// The residual is W0 − s·B₀·A₀ whether or not the adapter trains with
	// DoRA (the magnitude starts at the row norms of W0): unmerge it as the
	// plain low-rank update it is.
	plain := *a
	plain.Config.UseDoRA = false
	opts.Adapters = []Weighted{{Name: "initial " + method, Adapter: &plain, Weight: 1}}
	rep, err := Unmerge(ctx, baseDir, residualDir, opts)
	if err != nil {
		return nil, nil, err
	}
	rep.Operation = method + "-residual"
	return a, rep, nil
}
