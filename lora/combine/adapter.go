package combine

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/loraflow/loraflow/lora/peft"
)

// Adapters combines PEFT adapters trained on the same base model into one,
// as add_weighted_adapter(adapters, opts.Weights, combination_type=opts.Method,
// ...) does. The result has r = the combined rank, scaling 1 (lora_alpha = r,
// or √r when the first adapter uses rsLoRA, whose use_rslora it keeps as
// PEFT does), no rank or alpha patterns; target_modules is the
// union of the lists (or the alternation of the regexes). Plain parameters
// saved with an adapter (modules_to_save, biases) are carried over when only
// one adapter has them. DoRA adapters are refused: PEFT's combination ignores
// the magnitude vector, which would silently change the model.
func Adapters(ctx context.Context, adapters []*peft.Adapter, opts Options) (*peft.Adapter, error) {
	ranks := make([]int, len(adapters))
	for i, a := range adapters {
		if a == nil {
			return nil, fmt.Errorf("%w: adapter %d is nil", ErrInvalid, i)
		}
		if a.Config.UseDoRA {
			return nil, fmt.Errorf("%w: adapter %d uses DoRA; combining DoRA adapters is not supported", ErrInvalid, i)
		}
		ranks[i] = a.Config.R
		for _, r := range a.Config.RankPattern {
			ranks[i] = max(ranks[i], r)
		}
	}
	method, rank, err := Resolve(opts, ranks)
	if err != nil {
		return nil, err
	}
	targets, err := unionTargets(adapters)
	if err != nil {
		return nil, err
	}
	cfg := adapters[0].Config
	// add_weighted_adapter (peft/tuners/lora/model.py) writes
	// replace(peft_config[adapters[0]], r=new_rank, lora_alpha=new_rank,
	// alpha_pattern={}, rank_pattern={}, ...): every other field, use_rslora
	// included, is the first adapter's. The combined factors already carry
	// each adapter's scaling, so the result must scale by 1: lora_alpha = r,
	// or √r under rsLoRA (scaling = lora_alpha/√r), where PEFT's own
	// lora_alpha = r would scale the sum by √r once more.
	cfg.R, cfg.LoraAlpha = rank, float64(rank)
	if cfg.UseRSLoRA {
		cfg.LoraAlpha = math.Sqrt(float64(rank))
	}
	cfg.RankPattern, cfg.AlphaPattern = map[string]int{}, map[string]float64{}
	cfg.TargetModules = targets
	out := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}

	modules := map[string]bool{}
	for i, a := range adapters {
		if err := a.Check(); err != nil {
			return nil, fmt.Errorf("combine: adapter %d: %w", i, err)
		}
		for _, m := range a.Modules() {
			modules[m] = true
		}
		for _, k := range a.Names() {
			m, kind, _ := peft.ParseKey(k)
			switch kind {
			case "lora_magnitude_vector":
				return nil, fmt.Errorf("%w: adapter %d has DoRA magnitude %q", ErrInvalid, i, k)
			case "":
				if _, dup := out.Tensors[k]; dup {
					return nil, fmt.Errorf("%w: parameter %q (%s) is saved by more than one adapter and cannot be combined", ErrInvalid, k, m)
				}
				out.Tensors[k] = slices.Clone(a.Tensors[k])
				out.Shapes[k] = slices.Clone(a.Shapes[k])
			}
		}
	}
	for _, m := range slices.Sorted(maps.Keys(modules)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		layers := make([]*Factors, len(adapters))
		for i, a := range adapters {
			if _, ok := a.Tensors[peft.KeyA(m)]; !ok {
				continue
			}
			layers[i] = &Factors{
				A:     toDense(a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)]),
				B:     toDense(a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)]),
				Scale: a.Config.Scale(m),
			}
		}
		h := fnv.New64a()
		h.Write([]byte(m))
		am, bm, err := Module(layers, opts, method, rank, rand.New(rand.NewPCG(opts.Seed, h.Sum64())))
		if err != nil {
			return nil, fmt.Errorf("combine: module %q: %w", m, err)
		}
		for key, d := range map[string]*mat.Dense{peft.KeyA(m): am, peft.KeyB(m): bm} {
			r, c := d.Dims()
			out.Tensors[key] = fromDense(d)
			out.Shapes[key] = []int{r, c}
		}
	}
	return out, nil
}

func unionTargets(adapters []*peft.Adapter) (peft.TargetModules, error) {
	first := adapters[0].Config.TargetModules
	kind := func(t peft.TargetModules) string {
		switch {
		case t.AllLinear:
			return "all-linear"
		case t.Regex != "":
			return "regex"
		}
		return "list"
	}
	var regexes []string
	set := map[string]bool{}
	for i, a := range adapters {
		t := a.Config.TargetModules
		if kind(t) != kind(first) {
			return peft.TargetModules{}, fmt.Errorf("%w: adapter %d's target_modules is a %s, adapter 0's a %s; PEFT cannot combine a mix", ErrInvalid, i, kind(t), kind(first))
		}
		regexes = append(regexes, "("+t.Regex+")")
		for _, m := range t.List {
			set[m] = true
		}
	}
	switch kind(first) {
	case "all-linear":
		return first, nil
	case "regex":
		if len(regexes) == 1 {
			return first, nil
		}
		return peft.TargetModules{Regex: joinAlternation(regexes)}, nil
	}
	list := slices.Collect(maps.Keys(set))
	sort.Strings(list)
	return peft.TargetModules{List: list}, nil
}

func joinAlternation(parts []string) string {
	s := parts[0]
	for _, p := range parts[1:] {
		s += "|" + p
	}
	return s
}

func toDense(v []float32, shape []int) *mat.Dense {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return mat.NewDense(shape[0], shape[1], d)
}

func fromDense(m *mat.Dense) []float32 {
	r, c := m.Dims()
	out := make([]float32, 0, r*c)
	for i := 0; i < r; i++ {
		for _, x := range m.RawRowView(i) {
			out = append(out, float32(x))
		}
	}
	return out
}
