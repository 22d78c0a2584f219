package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"

	"gonum.org/v1/gonum/mat"

	"github.com/loraflow/loraflow/lora/combine"
	"github.com/loraflow/loraflow/lora/merge"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// Base is read access to the base checkpoint's tensors
// (safetensors.Checkpoint and safetensors.File satisfy it).
type Base interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
	Float32(name string) ([]float32, error)
}

// Layer is the diagnosis of one adapted module.
type Layer struct {
	Module          string    `json:"module"`
	Out             int       `json:"out"`
	In              int       `json:"in"`
	Rank            int       `json:"rank"`
	Scale           float64   `json:"scale"`
	SingularValues  []float64 `json:"singular_values"`
	EffectiveRank90 int       `json:"effective_rank_90"`
	EffectiveRank99 int       `json:"effective_rank_99"`
	DeltaNorm       float64   `json:"delta_frobenius_norm"`
	BaseTensor      string    `json:"base_tensor,omitempty"`
	BaseNorm        float64   `json:"base_frobenius_norm,omitempty"`
	NormRatio       float64   `json:"norm_ratio,omitempty"` // ‖ΔW‖_F / ‖W0‖_F
}

// Report is the diagnosis of an adapter.
type Report struct {
	Config            peft.Config `json:"config"`
	Modules           int         `json:"modules"`
	TrainableParams   int64       `json:"trainable_params"`
	BaseParams        int64       `json:"base_params,omitempty"`
	TrainablePercent  float64     `json:"trainable_percent,omitempty"` // of base + adapter, as PEFT prints it
	Layers            []Layer     `json:"layers"`
	SuggestedRank     int         `json:"suggested_rank"`        // smallest r keeping 99% of every module's energy
	EnergyAtSuggested float64     `json:"energy_at_suggested"`   // the least energy fraction kept by that rank
	MeanEnergyAtHalfR float64     `json:"mean_energy_at_half_r"` // mean energy kept at r/2, a hint for shrinking
	MaxNormRatio      float64     `json:"max_norm_ratio,omitempty"`
}

// EffectiveRank returns the number of leading singular values (sorted
// descending) whose squares hold at least the fraction energy of Σσ²; 0 for
// an all-zero spectrum.
func EffectiveRank(sv []float64, energy float64) int {
	total := 0.0
	for _, s := range sv {
		total += s * s
	}
	if total == 0 {
		return 0
	}
	acc := 0.0
	for i, s := range sv {
		acc += s * s
		if acc >= energy*total*(1-1e-12) {
			return i + 1
		}
	}
	return len(sv)
}

// EnergyKept returns the fraction of Σσ² held by the first k values.
func EnergyKept(sv []float64, k int) float64 {
	total, acc := 0.0, 0.0
	for i, s := range sv {
		total += s * s
		if i < k {
			acc += s * s
		}
	}
	if total == 0 {
		return 1
	}
	return acc / total
}

// Analyze diagnoses the adapter; base (may be nil) adds norm ratios and
// parameter totals.
func Analyze(ctx context.Context, a *peft.Adapter, base Base) (*Report, error) {
	if err := a.Check(); err != nil {
		return nil, fmt.Errorf("diagnose: %w", err)
	}
	rep := &Report{Config: a.Config}
	for _, k := range a.Names() {
		rep.TrainableParams += int64(len(a.Tensors[k]))
	}
	var baseNames []string
	if base != nil {
		baseNames = base.Names()
		slices.Sort(baseNames)
	}
	has := func(n string) bool { _, ok := slices.BinarySearch(baseNames, n); return ok }
	for _, m := range a.Modules() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sa, sb := a.Shapes[peft.KeyA(m)], a.Shapes[peft.KeyB(m)]
		l := Layer{Module: m, Rank: sa[0], In: sa[1], Out: sb[0], Scale: a.Config.Scale(m)}
		A := toDense(a.Tensors[peft.KeyA(m)], sa)
		B := toDense(a.Tensors[peft.KeyB(m)], sb)
		B.Scale(l.Scale, B)
		p, err := combine.SVDOfProduct(B, A)
		if err != nil {
			return nil, fmt.Errorf("diagnose: module %q: %w", m, err)
		}
		l.SingularValues = p.Values
		l.EffectiveRank90 = EffectiveRank(p.Values, 0.90)
		l.EffectiveRank99 = EffectiveRank(p.Values, 0.99)
		for _, s := range p.Values {
			l.DeltaNorm += s * s
		}
		l.DeltaNorm = math.Sqrt(l.DeltaNorm)
		if base != nil {
			if name, ok := merge.BaseTensorName(has, m+".weight"); ok {
				w, err := base.Float32(name)
				if err != nil {
					return nil, fmt.Errorf("diagnose: base tensor %q: %w", name, err)
				}
				if len(w) != l.Out*l.In {
					return nil, fmt.Errorf("diagnose: module %q: base tensor %q has %d values, ΔW has %d×%d: %w", m, name, len(w), l.Out, l.In, merge.ErrMismatch)
				}
				var ss float64
				for _, x := range w {
					ss += float64(x) * float64(x)
				}
				l.BaseTensor, l.BaseNorm = name, math.Sqrt(ss)
				if l.BaseNorm > 0 {
					l.NormRatio = l.DeltaNorm / l.BaseNorm
					rep.MaxNormRatio = math.Max(rep.MaxNormRatio, l.NormRatio)
				}
			} else {
				return nil, fmt.Errorf("diagnose: module %q: the base checkpoint has no tensor %q: %w", m, m+".weight", merge.ErrMismatch)
			}
		}
		rep.Layers = append(rep.Layers, l)
	}
	rep.Modules = len(rep.Layers)
	for _, l := range rep.Layers {
		rep.SuggestedRank = max(rep.SuggestedRank, l.EffectiveRank99)
	}
	rep.EnergyAtSuggested = 1
	half := 0.0
	for _, l := range rep.Layers {
		rep.EnergyAtSuggested = math.Min(rep.EnergyAtSuggested, EnergyKept(l.SingularValues, rep.SuggestedRank))
		half += EnergyKept(l.SingularValues, max(1, l.Rank/2))
	}
	if len(rep.Layers) > 0 {
		rep.MeanEnergyAtHalfR = half / float64(len(rep.Layers))
	}
	if base != nil {
		for _, n := range baseNames {
			if info, ok := base.Info(n); ok {
				rep.BaseParams += int64(info.NumElements())
			}
		}
		rep.TrainablePercent = 100 * float64(rep.TrainableParams) / float64(rep.BaseParams+rep.TrainableParams)
	}
	return rep, nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a human-readable summary and one line per module.
func (r *Report) WriteText(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "adapter: peft_type=%s r=%d lora_alpha=%g rslora=%v dora=%v fan_in_fan_out=%v target_modules=%s\n",
		c.PeftType, c.R, c.LoraAlpha, c.UseRSLoRA, c.UseDoRA, c.FanInFanOut, c.TargetModules.String())
	if c.BaseModelNameOrPath != "" {
		fmt.Fprintf(w, "base model: %s\n", c.BaseModelNameOrPath)
	}
	fmt.Fprintf(w, "modules: %d   trainable params: %d", r.Modules, r.TrainableParams)
	if r.BaseParams > 0 {
		fmt.Fprintf(w, "   all params: %d   trainable%%: %.4f", r.BaseParams+r.TrainableParams, r.TrainablePercent)
	}
	fmt.Fprintf(w, "\nsuggested rank: %d (keeps ≥ %.2f%% of every module's energy); mean energy at r/2: %.2f%%\n\n",
		r.SuggestedRank, 100*r.EnergyAtSuggested, 100*r.MeanEnergyAtHalfR)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "module\tshape\tr\trank90\trank99\t‖ΔW‖\t‖ΔW‖/‖W0‖\tσ1\tσr")
	for _, l := range r.Layers {
		ratio := "-"
		if l.BaseNorm > 0 {
			ratio = fmt.Sprintf("%.3g", l.NormRatio)
		}
		first, last := 0.0, 0.0
		if n := len(l.SingularValues); n > 0 {
			first, last = l.SingularValues[0], l.SingularValues[n-1]
		}
		fmt.Fprintf(tw, "%s\t%d×%d\t%d\t%d\t%d\t%.3g\t%s\t%.3g\t%.3g\n", l.Module, l.Out, l.In, l.Rank, l.EffectiveRank90, l.EffectiveRank99, l.DeltaNorm, ratio, first, last)
	}
	return tw.Flush()
}

func toDense(v []float32, shape []int) *mat.Dense {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return mat.NewDense(shape[0], shape[1], d)
}
