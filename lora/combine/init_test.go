package combine

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loraflow/loraflow/lora/peft"
)

func randWeights(rng *rand.Rand, n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	return w
}

// reconstruct returns Residual + s·B·A in W's stored layout.
func reconstruct(in Init, out, inDim, r int, scale float64, fifo bool) []float64 {
	res := make([]float64, out*inDim)
	for i := 0; i < out; i++ {
		for j := 0; j < inDim; j++ {
			var acc float64
			for k := 0; k < r; k++ {
				acc += float64(in.B[i*r+k]) * float64(in.A[k*inDim+j])
			}
			idx := i*inDim + j
			if fifo {
				idx = j*out + i
			}
			res[idx] = float64(in.Residual[idx]) + scale*acc
		}
	}
	return res
}

func TestPiSSAAndOLoRAReconstructW(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const out, in, r = 7, 5, 3
	for _, fifo := range []bool{false, true} {
		w := randWeights(rng, out*in)
		for name, f := range map[string]func([]float32, int, int, int, float64, bool) (Init, error){"pissa": PiSSA, "olora": OLoRA} {
			init, err := f(w, out, in, r, 2, fifo)
			if err != nil {
				t.Fatal(err)
			}
			if len(init.A) != r*in || len(init.B) != out*r {
				t.Fatalf("%s: A %d B %d values", name, len(init.A), len(init.B))
			}
			got := reconstruct(init, out, in, r, 2, fifo)
			for i := range w {
				if math.Abs(got[i]-float64(w[i])) > 1e-5 {
					t.Fatalf("%s fifo=%v: residual + s·B·A [%d] = %g, W = %g", name, fifo, i, got[i], w[i])
				}
			}
		}
	}
}

func TestPiSSAResidualHoldsMinorComponents(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const out, in, r = 6, 6, 2
	w := randWeights(rng, out*in)
	init, err := PiSSA(w, out, in, r, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	var full, res mat.SVD
	full.Factorize(mat.NewDense(out, in, f64(w)), mat.SVDNone)
	res.Factorize(mat.NewDense(out, in, f64(init.Residual)), mat.SVDNone)
	sw, sr := full.Values(nil), res.Values(nil)
	for k := 0; k < out-r; k++ {
		if math.Abs(sr[k]-sw[k+r]) > 1e-5 {
			t.Fatalf("residual σ%d = %g, want W's σ%d = %g", k, sr[k], k+r, sw[k+r])
		}
	}
	if _, err := PiSSA(w, out, in, 7, 1, false); err == nil {
		t.Fatal("rank above min(out, in) accepted")
	}
}

func f64(v []float32) []float64 {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return d
}

func TestConvertMutatedInit(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	m := "model.layers.0.self_attn.q_proj"
	mk := func() *peft.Adapter {
		c := peft.DefaultConfig("q_proj")
		c.R, c.LoraAlpha, c.UseRSLoRA = 2, 4, true
		a := &peft.Adapter{Config: c, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
		a.Tensors[peft.KeyA(m)], a.Shapes[peft.KeyA(m)] = randWeights(rng, 2*5), []int{2, 5}
		a.Tensors[peft.KeyB(m)], a.Shapes[peft.KeyB(m)] = randWeights(rng, 4*2), []int{4, 2}
		return a
	}
	initial, trained := mk(), mk()
	conv, err := ConvertMutatedInit(context.Background(), trained, initial)
	if err != nil {
		t.Fatal(err)
	}
	want := mat.NewDense(4, 5, nil)
	want.Sub(delta(trained, m), delta(initial, m))
	if math.Abs(conv.Config.Scale(m)-trained.Config.Scale(m)) > 1e-12 {
		t.Fatalf("scale %g, want %g", conv.Config.Scale(m), trained.Config.Scale(m))
	}
	if !mat.EqualApprox(delta(conv, m), want, 1e-5) {
		t.Fatal("converted ΔW ≠ s·(B·A − B₀·A₀)")
	}
}
