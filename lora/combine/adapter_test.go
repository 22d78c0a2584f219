package combine

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loraflow/loraflow/lora/peft"
)

func randomAdapter(rng *rand.Rand, r int, alpha float64, rslora bool, modules map[string][2]int) *peft.Adapter {
	cfg := peft.DefaultConfig("q_proj", "v_proj")
	cfg.R, cfg.LoraAlpha, cfg.UseRSLoRA = r, alpha, rslora
	a := &peft.Adapter{Config: cfg, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for m, io := range modules {
		in, out := io[0], io[1]
		av := make([]float32, r*in)
		bv := make([]float32, out*r)
		for i := range av {
			av[i] = float32(rng.NormFloat64())
		}
		for i := range bv {
			bv[i] = float32(rng.NormFloat64())
		}
		a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)] = av, []int{r, in}
		a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)] = bv, []int{out, r}
	}
	return a
}

func delta(a *peft.Adapter, m string) *mat.Dense {
	am := toDense(a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)])
	bm := toDense(a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)])
	var d mat.Dense
	d.Mul(bm, am)
	d.Scale(a.Config.Scale(m), &d)
	return &d
}

// weightedDelta is Σ wᵢ·ΔWᵢ of module m.
func weightedDelta(m string, w []float64, adapters ...*peft.Adapter) *mat.Dense {
	var sum mat.Dense
	for i, a := range adapters {
		d := delta(a, m)
		d.Scale(w[i], d)
		if i == 0 {
			sum.CloneFrom(d)
		} else {
			sum.Add(&sum, d)
		}
	}
	return &sum
}

func TestAdaptersCatAndSVD(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	q := "model.layers.0.self_attn.q_proj"
	v := "model.layers.0.self_attn.v_proj"
	a1 := randomAdapter(rng, 2, 4, false, map[string][2]int{q: {8, 8}, v: {8, 4}})
	a2 := randomAdapter(rng, 4, 8, true, map[string][2]int{q: {8, 8}})
	w := []float64{0.6, -0.4}
	for _, method := range []Method{Cat, SVD} {
		got, err := Adapters(context.Background(), []*peft.Adapter{a1, a2}, Options{Method: method, Weights: w, SVDRank: 6})
		if err != nil {
			t.Fatal(err)
		}
		if got.Config.R != 6 || got.Config.LoraAlpha != 6 || got.Config.UseRSLoRA {
			t.Fatalf("%s: config r=%d alpha=%g rslora=%v, want 6, 6, false", method, got.Config.R, got.Config.LoraAlpha, got.Config.UseRSLoRA)
		}
		if !mat.EqualApprox(delta(got, q), weightedDelta(q, w, a1, a2), 1e-4) {
			t.Fatalf("%s: combined q_proj ΔW differs from Σ wᵢ·ΔWᵢ", method)
		}
		var wantV mat.Dense
		wantV.Scale(w[0], delta(a1, v))
		if !mat.EqualApprox(delta(got, v), &wantV, 1e-4) {
			t.Fatalf("%s: v_proj (only in adapter 0) differs from w₀·ΔW₀", method)
		}
		if s := got.Shapes[peft.KeyB(v)]; s[0] != 4 || s[1] != 6 {
			t.Fatalf("%s: v_proj lora_B shape %v, want [4 6]", method, s)
		}
	}
}

// add_weighted_adapter keeps the first adapter's use_rslora
// (peft/tuners/lora/model.py: replace(self.peft_config[adapters[0]], ...));
// the combined adapter still adds up to Σ wᵢ·ΔWᵢ under PEFT's scaling
// lora_alpha/√r.
func TestAdaptersKeepFirstRSLoRA(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	q := "model.layers.0.self_attn.q_proj"
	a1 := randomAdapter(rng, 4, 8, true, map[string][2]int{q: {8, 8}})
	a2 := randomAdapter(rng, 2, 4, false, map[string][2]int{q: {8, 8}})
	w := []float64{0.7, 0.5}
	got, err := Adapters(context.Background(), []*peft.Adapter{a1, a2}, Options{Method: Cat, Weights: w})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Config.UseRSLoRA || got.Config.R != 6 {
		t.Fatalf("config r=%d rslora=%v, want 6 and the first adapter's true", got.Config.R, got.Config.UseRSLoRA)
	}
	if s := got.Config.Scale(q); math.Abs(s-1) > 1e-12 {
		t.Fatalf("combined scaling %g, want 1", s)
	}
	if !mat.EqualApprox(delta(got, q), weightedDelta(q, w, a1, a2), 1e-4) {
		t.Fatal("combined ΔW under rsLoRA scaling differs from Σ wᵢ·ΔWᵢ")
	}
}

func TestAdaptersLinearRankMismatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	m := map[string][2]int{"model.layers.0.self_attn.q_proj": {4, 4}}
	_, err := Adapters(context.Background(), []*peft.Adapter{randomAdapter(rng, 2, 2, false, m), randomAdapter(rng, 3, 3, false, m)}, Options{Method: Linear, Weights: []float64{1, 1}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestAdaptersLinearEqualsScaledSingle(t *testing.T) {
	// A single adapter with weight w: linear gives √w·B·√w·A·scale = w·ΔW.
	rng := rand.New(rand.NewPCG(3, 3))
	q := "model.layers.1.self_attn.q_proj"
	a := randomAdapter(rng, 4, 16, true, map[string][2]int{q: {6, 5}})
	got, err := Adapters(context.Background(), []*peft.Adapter{a}, Options{Method: TIES, Weights: []float64{-0.5}})
	if err != nil {
		t.Fatal(err)
	}
	var want mat.Dense
	want.Scale(-0.5, delta(a, q))
	if !mat.EqualApprox(delta(got, q), &want, 1e-4) {
		t.Fatal("single adapter with weight -0.5 is not -0.5·ΔW")
	}
	if math.Abs(got.Config.Scale(q)-1) > 0 {
		t.Fatalf("combined scale %g, want 1", got.Config.Scale(q))
	}
}
