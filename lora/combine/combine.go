package combine

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// Method is a combination type of PEFT's add_weighted_adapter.
type Method string

// The combination types.
const (
	Linear            Method = "linear"
	Cat               Method = "cat"
	SVD               Method = "svd"
	TIES              Method = "ties"
	TIESSVD           Method = "ties_svd"
	DARELinear        Method = "dare_linear"
	DARELinearSVD     Method = "dare_linear_svd"
	DARETIES          Method = "dare_ties"
	DARETIESSVD       Method = "dare_ties_svd"
	MagnitudePrune    Method = "magnitude_prune"
	MagnitudePruneSVD Method = "magnitude_prune_svd"
)

// Methods lists every supported combination type.
var Methods = []Method{Linear, Cat, SVD, TIES, TIESSVD, DARELinear, DARELinearSVD, DARETIES, DARETIESSVD, MagnitudePrune, MagnitudePruneSVD}

// Majority sign election methods for TIES and DARE-TIES.
const (
	SignTotal     = "total"
	SignFrequency = "frequency"
)

// ErrInvalid is matched (errors.Is) by every error caused by bad options or
// incompatible inputs.
var ErrInvalid = errors.New("invalid combination")

// Options are the arguments of add_weighted_adapter.
type Options struct {
	Method       Method
	Weights      []float64 // one per adapter; negative weights subtract
	SVDRank      int       // rank of the *svd results; 0 = the largest source rank
	SVDClamp     float64   // quantile in (0, 1] to clamp the SVD factors to; 0 = no clamping
	Density      float64   // fraction of entries kept by the pruning methods, in [0, 1]
	MajoritySign string    // "total" (default) or "frequency"
	Seed         uint64    // seed of the DARE random masks
}

// Factors is one adapted module of one adapter: ΔW = Scale·B·A, A [r, in],
// B [out, r].
type Factors struct {
	A, B  *mat.Dense
	Scale float64
}

// Rank returns r.
func (f *Factors) Rank() int { r, _ := f.A.Dims(); return r }

func (m Method) valid() bool { return slices.Contains(Methods, m) }

func (m Method) isSVD() bool {
	switch m {
	case SVD, TIESSVD, DARELinearSVD, DARETIESSVD, MagnitudePruneSVD:
		return true
	}
	return false
}

// NeedsDensity reports whether the method prunes (ties, dare_*,
// magnitude_prune and their _svd forms) and so needs Options.Density.
func (m Method) NeedsDensity() bool {
	switch m {
	case TIES, TIESSVD, DARELinear, DARELinearSVD, DARETIES, DARETIESSVD, MagnitudePrune, MagnitudePruneSVD:
		return true
	}
	return false
}

// Resolve validates the options for n adapters whose (largest) ranks are
// given, and returns the effective method (PEFT uses linear for a single
// adapter) and the rank of the combined adapter.
func Resolve(opts Options, ranks []int) (Method, int, error) {
	if len(ranks) == 0 {
		return "", 0, fmt.Errorf("%w: no adapters", ErrInvalid)
	}
	if len(opts.Weights) != len(ranks) {
		return "", 0, fmt.Errorf("%w: %d weights for %d adapters", ErrInvalid, len(opts.Weights), len(ranks))
	}
	if !opts.Method.valid() {
		return "", 0, fmt.Errorf("%w: unknown combination type %q (want one of %v)", ErrInvalid, opts.Method, Methods)
	}
	if opts.MajoritySign != "" && opts.MajoritySign != SignTotal && opts.MajoritySign != SignFrequency {
		return "", 0, fmt.Errorf("%w: majority_sign_method %q (want total or frequency)", ErrInvalid, opts.MajoritySign)
	}
	if opts.SVDClamp < 0 || opts.SVDClamp > 1 {
		return "", 0, fmt.Errorf("%w: svd_clamp %g is not a quantile in (0, 1]", ErrInvalid, opts.SVDClamp)
	}
	method := opts.Method
	if len(ranks) == 1 {
		method = Linear
	}
	if method.NeedsDensity() && (opts.Density < 0 || opts.Density > 1 || math.IsNaN(opts.Density)) {
		return "", 0, fmt.Errorf("%w: %s needs a density in [0, 1], got %g", ErrInvalid, method, opts.Density)
	}
	switch {
	case method == Cat:
		sum := 0
		for _, r := range ranks {
			sum += r
		}
		return method, sum, nil
	case method.isSVD():
		if opts.SVDRank < 0 {
			return "", 0, fmt.Errorf("%w: svd_rank %d", ErrInvalid, opts.SVDRank)
		}
		if opts.SVDRank > 0 {
			return method, opts.SVDRank, nil
		}
		return method, slices.Max(ranks), nil
	default:
		for _, r := range ranks[1:] {
			if r != ranks[0] {
				return "", 0, fmt.Errorf("%w: %s needs adapters of equal rank, got ranks %v", ErrInvalid, method, ranks)
			}
		}
		return method, ranks[0], nil
	}
}

// Module combines one module. layers[i] is adapter i's factors for this
// module, nil when adapter i does not adapt it (it is then skipped, as PEFT
// does). method and rank come from Resolve; rng drives the DARE masks. The
// result satisfies ΔW' = B'·A' (scaling 1); B' is [out, rank], A' [rank, in].
func Module(layers []*Factors, opts Options, method Method, rank int, rng *rand.Rand) (a, b *mat.Dense, err error) {
	var present []int
	out, in := -1, -1
	for i, f := range layers {
		if f == nil {
			continue
		}
		fo, fr := f.B.Dims()
		ar, fi := f.A.Dims()
		if fr != ar {
			return nil, nil, fmt.Errorf("%w: adapter %d: lora_B is %d×%d but lora_A is %d×%d", ErrInvalid, i, fo, fr, ar, fi)
		}
		if out >= 0 && (fo != out || fi != in) {
			return nil, nil, fmt.Errorf("%w: adapter %d: ΔW is %d×%d, adapter %d's is %d×%d", ErrInvalid, i, fo, fi, present[0], out, in)
		}
		out, in = fo, fi
		present = append(present, i)
	}
	if len(present) == 0 {
		return nil, nil, fmt.Errorf("%w: no adapter adapts this module", ErrInvalid)
	}
	signMethod := opts.MajoritySign
	if signMethod == "" {
		signMethod = SignTotal
	}
	switch {
	case method == Cat:
		a = mat.NewDense(rank, in, nil)
		b = mat.NewDense(out, rank, nil)
		off := 0
		for _, i := range present {
			f := layers[i]
			r := f.Rank()
			if off+r > rank {
				return nil, nil, fmt.Errorf("%w: cat: ranks exceed the combined rank %d", ErrInvalid, rank)
			}
			w := opts.Weights[i] * f.Scale
			for row := 0; row < r; row++ {
				for col := 0; col < in; col++ {
					a.Set(off+row, col, w*f.A.At(row, col))
				}
			}
			b.Slice(0, out, off, off+r).(*mat.Dense).Copy(f.B)
			off += r
		}
		return a, b, nil

	case method.isSVD():
		return svdModule(layers, present, opts, method, signMethod, rank, out, in, rng)

	default:
		var as, bs [][]float64
		var wa, wb []float64
		for _, i := range present {
			f := layers[i]
			if f.Rank() != rank {
				return nil, nil, fmt.Errorf("%w: %s needs rank %d, adapter %d has rank %d here", ErrInvalid, method, rank, i, f.Rank())
			}
			ws := opts.Weights[i] * f.Scale
			sq := math.Sqrt(math.Abs(ws))
			sign := 1.0
			if ws < 0 {
				sign = -1
			}
			wa = append(wa, sign*sq)
			wb = append(wb, sq)
			as = append(as, mat.DenseCopyOf(f.A).RawMatrix().Data)
			bs = append(bs, mat.DenseCopyOf(f.B).RawMatrix().Data)
		}
		ad, err := mix(method, as, wa, opts.Density, signMethod, rng)
		if err != nil {
			return nil, nil, err
		}
		bd, err := mix(method, bs, wb, opts.Density, signMethod, rng)
		if err != nil {
			return nil, nil, err
		}
		return mat.NewDense(rank, in, ad), mat.NewDense(out, rank, bd), nil
	}
}

func svdModule(layers []*Factors, present []int, opts Options, method Method, signMethod string, rank, out, in int, rng *rand.Rand) (a, b *mat.Dense, err error) {
	var u, v *mat.Dense
	var values []float64
	if method == SVD {
		// ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ = [w₁s₁B₁ …]·[A₁; …]: decompose the factored form.
		total := 0
		for _, i := range present {
			total += layers[i].Rank()
		}
		bc := mat.NewDense(out, total, nil)
		ac := mat.NewDense(total, in, nil)
		off := 0
		for _, i := range present {
			f := layers[i]
			r := f.Rank()
			bs := bc.Slice(0, out, off, off+r).(*mat.Dense)
			bs.Scale(opts.Weights[i]*f.Scale, f.B)
			ac.Slice(off, off+r, 0, in).(*mat.Dense).Copy(f.A)
			off += r
		}
		p, err := SVDOfProduct(bc, ac)
		if err != nil {
			return nil, nil, err
		}
		u, values, v = p.U, p.Values, p.V
	} else {
		deltas := make([][]float64, 0, len(present))
		weights := make([]float64, 0, len(present))
		for _, i := range present {
			f := layers[i]
			var d mat.Dense
			d.Mul(f.B, f.A)
			d.Scale(f.Scale, &d)
			deltas = append(deltas, d.RawMatrix().Data)
			weights = append(weights, opts.Weights[i])
		}
		var base Method
		switch method {
		case TIESSVD:
			base = TIES
		case DARELinearSVD:
			base = DARELinear
		case DARETIESSVD:
			base = DARETIES
		case MagnitudePruneSVD:
			base = MagnitudePrune
		}
		dw, err := mix(base, deltas, weights, opts.Density, signMethod, rng)
		if err != nil {
			return nil, nil, err
		}
		var svd mat.SVD
		if !svd.Factorize(mat.NewDense(out, in, dw), mat.SVDThin) {
			return nil, nil, fmt.Errorf("combine: SVD of the %d×%d combined ΔW did not converge", out, in)
		}
		u, v = new(mat.Dense), new(mat.Dense)
		svd.UTo(u)
		svd.VTo(v)
		values = svd.Values(nil)
	}
	// B' = U[:, :rank]·diag(S[:rank]), A' = Vᵀ[:rank, :]; zero columns when
	// ΔW has fewer singular values than the requested rank.
	k := min(rank, len(values))
	b = mat.NewDense(out, rank, nil)
	a = mat.NewDense(rank, in, nil)
	for j := 0; j < k; j++ {
		for i := 0; i < out; i++ {
			b.Set(i, j, u.At(i, j)*values[j])
		}
		for i := 0; i < in; i++ {
			a.Set(j, i, v.At(i, j))
		}
	}
	if opts.SVDClamp > 0 {
		all := make([]float64, 0, out*rank+rank*in)
		for i := 0; i < out; i++ {
			all = append(all, b.RawRowView(i)...)
		}
		for i := 0; i < rank; i++ {
			all = append(all, a.RawRowView(i)...)
		}
		hi := Quantile(all, opts.SVDClamp)
		clamp := func(_, _ int, x float64) float64 { return math.Max(-hi, math.Min(hi, x)) }
		b.Apply(clamp, b)
		a.Apply(clamp, a)
	}
	return a, b, nil
}

// Quantile returns the q-quantile of x with linear interpolation between
// order statistics (torch.quantile's default). x is not modified.
func Quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}
