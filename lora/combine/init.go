package combine

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/loraflow/loraflow/lora/peft"
)

// Init is a data-driven LoRA initialisation of one layer: the factors and
// the residual base weight that replaces W, so that
// Residual + Scale·B·A = W (in W's stored layout).
type Init struct {
	A        []float32 // [r, in]
	B        []float32 // [out, r]
	Residual []float32 // W − Scale·B·A, same layout as W
}

// layerMatrix returns W as an out×in float64 matrix; a fan_in_fan_out
// weight is stored [in, out].
func layerMatrix(w []float32, out, in int, fanInFanOut bool) (*mat.Dense, error) {
	if len(w) != out*in {
		return nil, fmt.Errorf("combine: weight has %d values, not %d×%d", len(w), out, in)
	}
	d := make([]float64, len(w))
	for i, x := range w {
		d[i] = float64(x)
	}
	if fanInFanOut {
		return mat.DenseCopyOf(mat.NewDense(in, out, d).T()), nil
	}
	return mat.NewDense(out, in, d), nil
}

func finishInit(w *mat.Dense, a, b *mat.Dense, scale float64, fanInFanOut bool) Init {
	var res mat.Dense
	res.Mul(b, a)
	res.Scale(-scale, &res)
	res.Add(w, &res)
	var stored mat.Matrix = &res
	if fanInFanOut {
		stored = res.T()
	}
	return Init{A: fromDense(a), B: fromDense(b), Residual: fromDense(mat.DenseCopyOf(stored))}
}

// PiSSA initialises a layer from the top r singular triplets of W, as
// PEFT's init_lora_weights="pissa": W = U·S·Vᵀ, A = √(S_r/s)·V_rᵀ,
// B = U_r·√(S_r/s), Residual = W − s·B·A (the minor singular components).
// out and in are the layer's dimensions; W is stored [in, out] when
// fanInFanOut (GPT-2 Conv1D).
func PiSSA(w []float32, out, in, r int, scale float64, fanInFanOut bool) (Init, error) {
	if r <= 0 || r > min(out, in) {
		return Init{}, fmt.Errorf("combine: PiSSA rank %d must be in [1, %d]", r, min(out, in))
	}
	if scale <= 0 {
		return Init{}, fmt.Errorf("combine: PiSSA needs a positive scaling, got %g", scale)
	}
	W, err := layerMatrix(w, out, in, fanInFanOut)
	if err != nil {
		return Init{}, err
	}
	var svd mat.SVD
	if !svd.Factorize(W, mat.SVDThin) {
		return Init{}, fmt.Errorf("combine: PiSSA: SVD of the %d×%d weight did not converge", out, in)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	s := svd.Values(nil)
	a := mat.NewDense(r, in, nil)
	b := mat.NewDense(out, r, nil)
	for k := 0; k < r; k++ {
		root := math.Sqrt(s[k] / scale)
		for j := 0; j < in; j++ {
			a.Set(k, j, root*v.At(j, k))
		}
		for i := 0; i < out; i++ {
			b.Set(i, k, u.At(i, k)*root)
		}
	}
	return finishInit(W, a, b, scale, fanInFanOut), nil
}

// OLoRA initialises a layer from the thin QR factorisation W = Q·R, as
// PEFT's init_lora_weights="olora": B = Q[:, :r], A = R[:r, :],
// Residual = W − s·B·A. (PEFT factorises W as stored; for fan_in_fan_out
// layers this function factorises the out×in matrix, so the factors have
// the shapes the layer needs.)
func OLoRA(w []float32, out, in, r int, scale float64, fanInFanOut bool) (Init, error) {
	if r <= 0 || r > min(out, in) {
		return Init{}, fmt.Errorf("combine: OLoRA rank %d must be in [1, %d]", r, min(out, in))
	}
	W, err := layerMatrix(w, out, in, fanInFanOut)
	if err != nil {
		return Init{}, err
	}
	q, rr := thinQR(W)
	a := mat.DenseCopyOf(rr.Slice(0, r, 0, in))
	b := mat.DenseCopyOf(q.Slice(0, out, 0, r))
	return finishInit(W, a, b, scale, fanInFanOut), nil
}

// ConvertMutatedInit turns an adapter trained from a PiSSA or OLoRA
// initialisation into a plain LoRA adapter that applies to the original
// base model (not the residual one), as PEFT's save_pretrained with
// path_initial_model_for_weight_conversion: ΔW = s·(B·A − B₀·A₀), stored as
// A' = [A; A₀], B' = [B, −B₀] with rank 2r and the alpha that keeps the
// scaling (2·alpha, or √2·alpha with rsLoRA).
func ConvertMutatedInit(ctx context.Context, trained, initial *peft.Adapter) (*peft.Adapter, error) {
	if err := trained.Check(); err != nil {
		return nil, err
	}
	if err := initial.Check(); err != nil {
		return nil, err
	}
	c := trained.Config
	c.InitLoraWeights = "true"
	c.R *= 2
	grow := 2.0
	if c.UseRSLoRA {
		grow = math.Sqrt2
	}
	c.LoraAlpha *= grow
	rp := map[string]int{}
	for k, v := range c.RankPattern {
		rp[k] = 2 * v
	}
	ap := map[string]float64{}
	for k, v := range c.AlphaPattern {
		ap[k] = grow * v
	}
	c.RankPattern, c.AlphaPattern = rp, ap
	out := &peft.Adapter{Config: c, Tensors: map[string][]float32{}, Shapes: map[string][]int{}}
	for _, k := range slices.Sorted(maps.Keys(trained.Tensors)) {
		if _, kind, _ := peft.ParseKey(k); kind != "lora_A" && kind != "lora_B" {
			out.Tensors[k], out.Shapes[k] = slices.Clone(trained.Tensors[k]), slices.Clone(trained.Shapes[k])
		}
	}
	for _, m := range trained.Modules() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ka, kb := peft.KeyA(m), peft.KeyB(m)
		a0, ok := initial.Tensors[ka]
		if !ok {
			return nil, fmt.Errorf("%w: module %q is in the trained adapter but not in the initial one", ErrInvalid, m)
		}
		sa, sb := trained.Shapes[ka], trained.Shapes[kb]
		if !slices.Equal(sa, initial.Shapes[ka]) || !slices.Equal(sb, initial.Shapes[kb]) {
			return nil, fmt.Errorf("%w: module %q: trained shapes %v/%v differ from initial %v/%v", ErrInvalid, m, sa, sb, initial.Shapes[ka], initial.Shapes[kb])
		}
		r, in, o := sa[0], sa[1], sb[0]
		out.Tensors[ka] = append(slices.Clone(trained.Tensors[ka]), a0...)
		out.Shapes[ka] = []int{2 * r, in}
		b, b0 := trained.Tensors[kb], initial.Tensors[kb]
		nb := make([]float32, 0, o*2*r)
		for i := 0; i < o; i++ {
			nb = append(nb, b[i*r:(i+1)*r]...)
			for _, x := range b0[i*r : (i+1)*r] {
				nb = append(nb, -x)
			}
		}
		out.Tensors[kb], out.Shapes[kb] = nb, []int{o, 2 * r}
	}
	return out, nil
}
