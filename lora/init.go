package lora

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/loraflow/loraflow/lora/combine"
	"github.com/loraflow/loraflow/lora/peft"
)

// initMethod maps init_lora_weights to the initialisation training uses:
// "kaiming" (true: Kaiming-uniform A, zero B), "false", "gaussian", "pissa"
// (pissa_niter_K too, with the randomized SVD; see fastPiSSA) or "olora".
func initMethod(v peft.InitLoraWeights) (string, error) {
	s := strings.ToLower(string(v))
	switch s {
	case "", "true":
		return "kaiming", nil
	case "false", "gaussian", "pissa", "olora":
		return s, nil
	}
	if pissaNiter(s) > 0 {
		return "pissa", nil
	}
	return "", inputErr(KindBadConfig, "init_lora_weights %q is not supported for training (true, false, gaussian, pissa, pissa_niter_K, olora)", string(v))
}

// dataDriven reports whether method takes the factors from the base weights.
func dataDriven(method string) bool { return method == "pissa" || method == "olora" }

// initFromWeights sets l's LoRA factors from its base weight by PiSSA (top-r
// singular triplets: an exact SVD, combine.PiSSA, or with niter > 0 the
// randomized one of pissa_niter_K, fastPiSSA) or OLoRA (thin QR,
// combine.OLoRA), and replaces the weight the layer trains against by the
// residual W0 − s·B₀·A₀, so the layer's output is unchanged at
// initialisation. The residual is a new slice: the model's own weights are
// not touched.
func initFromWeights[T float](n *net[T], l *linear[T], scale float64, method string, niter int, rng *rand.Rand) error {
	if l.w == n.embed {
		return inputErr(KindBadConfig, "init_lora_weights %q cannot target %s: its weight is tied to the embeddings", method, l.module)
	}
	l.w.widen() // the residual replaces the weight
	lb := l.lora
	var in combine.Init
	var err error
	switch {
	case method == "olora":
		in, err = combine.OLoRA(toFloat32(l.w.w), l.out, l.in, lb.r, scale, l.conv1d)
	case niter > 0:
		in.A, in.B, in.Residual, err = fastPiSSA(toFloat32(l.w.w), l.out, l.in, lb.r, scale, l.conv1d, niter, rng)
	default:
		in, err = combine.PiSSA(toFloat32(l.w.w), l.out, l.in, lb.r, scale, l.conv1d)
	}
	if err != nil {
		return &InputError{Kind: KindBadConfig, Msg: fmt.Sprintf("init_lora_weights %q on %s [%d→%d]", method, l.module, l.in, l.out), Err: err}
	}
	copy(lb.a.w, fromFloat32[T](in.A))
	copy(lb.b.w, fromFloat32[T](in.B))
	lb.a0, lb.b0 = in.A, in.B
	l.w.w = fromFloat32[T](in.Residual)
	return nil
}

// exportTrained collects the trained adapter. After a PiSSA or OLoRA
// initialisation the adapter is converted, as PEFT's save_pretrained with
// path_initial_model_for_weight_conversion, into a plain LoRA of rank 2r
// (A' = [A; A₀], B' = [B, −B₀], alpha doubled, init_lora_weights true)
// that applies to the original base model; see combine.ConvertMutatedInit.
func exportTrained[T float](ctx context.Context, n *net[T], cfg peft.Config, tr []trainable[T]) (*peft.Adapter, error) {
	a := exportAdapter(cfg, tr, n.cfg.isGPT2())
	initial := &peft.Adapter{Config: a.Config, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, l := range n.linears() {
		if l.lora == nil || l.lora.a0 == nil {
			continue
		}
		ka, kb := peft.KeyA(l.module), peft.KeyB(l.module)
		initial.Tensors[ka], initial.Shapes[ka] = l.lora.a0, []int{l.lora.r, l.in}
		initial.Tensors[kb], initial.Shapes[kb] = l.lora.b0, []int{l.out, l.lora.r}
	}
	if len(initial.Tensors) == 0 {
		return a, nil
	}
	conv, err := combine.ConvertMutatedInit(ctx, a, initial)
	if err != nil {
		return nil, fmt.Errorf("lora: converting the %s-initialised adapter to plain LoRA: %w", cfg.InitLoraWeights, err)
	}
	return conv, nil
}

// MutatedFromConverted recovers PEFT's other saved form of a PiSSA or OLoRA
// run from the converted adapter Train returns: the trained factors A, B
// alone (rank r, the original lora_alpha, init_lora_weights method), to be
// used with the residual base model: the base with InitialFromConverted's
// adapter unmerged (or, for exact pissa and olora, merge.InitFromBase). It undoes the layout of combine.ConvertMutatedInit
// (A' = [A; A₀], B' = [B, −B₀]); DoRA magnitudes and other tensors are kept.
func MutatedFromConverted(a *peft.Adapter, method peft.InitLoraWeights) (*peft.Adapter, error) {
	return splitConverted(a, method, false)
}

// InitialFromConverted returns the initial factors A₀, B₀ held in a
// converted adapter (rank r, plain LoRA config). Unmerging it from the base
// model (merge.Unmerge) writes the residual model W0 − s·B₀·A₀ that the
// trained factors of MutatedFromConverted apply to; unlike
// merge.InitFromBase, which recomputes the decomposition, this also holds
// for pissa_niter_K, whose randomized factors cannot be recomputed.
func InitialFromConverted(a *peft.Adapter, method peft.InitLoraWeights) (*peft.Adapter, error) {
	in, err := splitConverted(a, method, true)
	if err != nil {
		return nil, err
	}
	in.Config.InitLoraWeights, in.Config.UseDoRA = "true", false
	for k := range in.Tensors {
		if _, kind, _ := peft.ParseKey(k); kind != "lora_A" && kind != "lora_B" {
			delete(in.Tensors, k)
			delete(in.Shapes, k)
		}
	}
	return in, nil
}

// splitConverted takes the trained (initial false) or the initial half of a
// converted adapter.
func splitConverted(a *peft.Adapter, method peft.InitLoraWeights, initial bool) (*peft.Adapter, error) {
	if m, err := initMethod(method); err != nil || !dataDriven(m) {
		return nil, inputErr(KindBadConfig, "init_lora_weights %q is not pissa or olora", string(method))
	}
	if err := a.Check(); err != nil {
		return nil, &InputError{Kind: KindAdapterMismatch, Msg: "converted adapter", Err: err}
	}
	c := a.Config
	if c.R%2 != 0 {
		return nil, inputErr(KindAdapterMismatch, "r = %d is odd: not a converted rank-2r adapter", c.R)
	}
	shrink := 2.0
	if c.UseRSLoRA {
		shrink = math.Sqrt2
	}
	c.R /= 2
	c.LoraAlpha /= shrink
	c.InitLoraWeights = method
	rp, ap := map[string]int{}, map[string]float64{}
	for k, v := range c.RankPattern {
		rp[k] = v / 2
	}
	for k, v := range c.AlphaPattern {
		ap[k] = v / shrink
	}
	c.RankPattern, c.AlphaPattern = rp, ap
	out := &peft.Adapter{Config: c, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, k := range a.Names() {
		if _, kind, _ := peft.ParseKey(k); kind != "lora_A" && kind != "lora_B" {
			out.Tensors[k], out.Shapes[k] = slices.Clone(a.Tensors[k]), slices.Clone(a.Shapes[k])
		}
	}
	for _, mod := range a.Modules() {
		ka, kb := peft.KeyA(mod), peft.KeyB(mod)
		sa, sb := a.Shapes[ka], a.Shapes[kb]
		if sa[0]%2 != 0 {
			return nil, inputErr(KindAdapterMismatch, "module %q: lora_A has %d rows, not 2r", mod, sa[0])
		}
		r, in, o := sa[0]/2, sa[1], sb[0]
		off := 0
		if initial {
			off = r
		}
		out.Tensors[ka], out.Shapes[ka] = slices.Clone(a.Tensors[ka][off*in:(off+r)*in]), []int{r, in}
		b := make([]float32, 0, o*r)
		for i := 0; i < o; i++ {
			for _, x := range a.Tensors[kb][i*2*r+off : i*2*r+off+r] {
				if initial { // stored as −B₀
					x = -x
				}
				b = append(b, x)
			}
		}
		out.Tensors[kb], out.Shapes[kb] = b, []int{o, r}
	}
	return out, nil
}
