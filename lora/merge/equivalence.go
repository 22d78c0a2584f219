package merge

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/loraflow/loraflow/lora/combine"
	"github.com/loraflow/loraflow/lora/peft"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// ErrNotEquivalent is matched by the error of an equivalence check whose
// logit difference exceeds the tolerance.
var ErrNotEquivalent = errors.New("merged model is not equivalent to base + adapter")

// Model is a loaded model that computes next-token logits
// ([len(tokens) × vocab], row-major), with an adapter applied on the fly
// or, for a nil adapter, as it is.
type Model interface {
	Logits(ctx context.Context, a *peft.Adapter, tokens []int) ([]float32, error)
	VocabSize() int
}

// Loader loads the model in a checkpoint folder.
type Loader func(ctx context.Context, dir string) (Model, error)

// EquivalenceReport is the proof that a merged model computes what base +
// adapters computes.
type EquivalenceReport struct {
	Probes          int     `json:"probes"`
	Tokens          int     `json:"tokens"`
	ProbeDigest     string  `json:"probe_digest"` // sha256 of the probe set, see ProbeDigest
	MaxAbsLogitDiff float64 `json:"max_abs_logit_diff"`
	MaxAbsLogit     float64 `json:"max_abs_logit"`
	RelativeDiff    float64 `json:"relative_diff"` // MaxAbsLogitDiff / max(1, MaxAbsLogit)
	DType           string  `json:"dtype"`         // the coarsest float dtype of the merged checkpoint
	Tolerance       float64 `json:"tolerance"`     // on RelativeDiff
	Passed          bool    `json:"passed"`
}

// DefaultTolerance is the bound on the relative logit difference suited to
// the dtype the merged weights were rounded to: float32 rounding only for
// F32, about 2⁻¹¹ per weight for F16 and 2⁻⁸ for BF16, accumulated over the
// layers of a model.
func DefaultTolerance(dt safetensors.DType) float64 {
	switch dt {
	case safetensors.F16:
		return 5e-3
	case safetensors.BF16:
		return 5e-2
	}
	return 1e-4
}

// ProbeDigest returns "sha256:<hex>" of the probe set: for each probe its
// length then its tokens, all as little-endian uint32.
func ProbeDigest(probes [][]int) string {
	h := sha256.New()
	var b [4]byte
	for _, p := range probes {
		binary.LittleEndian.PutUint32(b[:], uint32(len(p)))
		h.Write(b[:])
		for _, t := range p {
			binary.LittleEndian.PutUint32(b[:], uint32(t))
			h.Write(b[:])
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// DefaultProbes returns n reproducible pseudo-random token sequences of the
// given length over [0, vocab).
func DefaultProbes(vocab, n, length int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 0x6c6f7261))
	out := make([][]int, n)
	for i := range out {
		out[i] = make([]int, length)
		for j := range out[i] {
			out[i][j] = rng.IntN(vocab)
		}
	}
	return out
}

// EquivalenceWith runs base+adapters and the merged model on the probes (4
// pseudo-random sequences of 16 tokens when nil) and compares their logits.
// tol ≤ 0 picks DefaultTolerance of the merged checkpoint's dtype. Several
// adapters are applied as their exact concatenation (combine.Cat). The
// report is returned also when the check fails, with an error matching
// ErrNotEquivalent.
func EquivalenceWith(ctx context.Context, load Loader, baseDir string, adapters []Weighted, mergedDir string, probes [][]int, tol float64) (*EquivalenceReport, error) {
	if len(adapters) == 0 {
		return nil, fmt.Errorf("equivalence: no adapters")
	}
	applied := adapters[0].Adapter
	if len(adapters) > 1 || adapters[0].Weight != 1 {
		list := make([]*peft.Adapter, len(adapters))
		weights := make([]float64, len(adapters))
		for i, w := range adapters {
			list[i], weights[i] = w.Adapter, w.Weight
		}
		var err error
		if applied, err = combine.Adapters(ctx, list, combine.Options{Method: combine.Cat, Weights: weights}); err != nil {
			return nil, fmt.Errorf("equivalence: %w", err)
		}
	}
	dt, err := coarsestDType(mergedDir)
	if err != nil {
		return nil, fmt.Errorf("equivalence: %w", err)
	}
	if tol <= 0 {
		tol = DefaultTolerance(dt)
	}
	// One model in memory at a time: base + adapter first, then the merged model.
	base, err := load(ctx, baseDir)
	if err != nil {
		return nil, fmt.Errorf("equivalence: load base %s: %w", baseDir, err)
	}
	if probes == nil {
		probes = DefaultProbes(base.VocabSize(), 4, 16, 0)
	}
	wants := make([][]float32, len(probes))
	for i, p := range probes {
		if wants[i], err = base.Logits(ctx, applied, p); err != nil {
			return nil, fmt.Errorf("equivalence: probe %d with base + adapter: %w", i, err)
		}
	}
	merged, err := load(ctx, mergedDir)
	if err != nil {
		return nil, fmt.Errorf("equivalence: load merged %s: %w", mergedDir, err)
	}
	rep := &EquivalenceReport{Probes: len(probes), ProbeDigest: ProbeDigest(probes), DType: string(dt), Tolerance: tol}
	for i, p := range probes {
		want := wants[i]
		got, err := merged.Logits(ctx, nil, p)
		if err != nil {
			return nil, fmt.Errorf("equivalence: probe %d with the merged model: %w", i, err)
		}
		if len(got) != len(want) {
			return nil, fmt.Errorf("equivalence: probe %d: %d logits from the merged model, %d from base + adapter", i, len(got), len(want))
		}
		rep.Tokens += len(p)
		for j := range want {
			rep.MaxAbsLogit = math.Max(rep.MaxAbsLogit, math.Abs(float64(want[j])))
			d := math.Abs(float64(got[j]) - float64(want[j]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			rep.MaxAbsLogitDiff = math.Max(rep.MaxAbsLogitDiff, d)
		}
	}
	rep.RelativeDiff = rep.MaxAbsLogitDiff / math.Max(1, rep.MaxAbsLogit)
	rep.Passed = rep.RelativeDiff <= tol
	if !rep.Passed {
		return rep, fmt.Errorf("%w: max |logit diff| %.3g (relative %.3g) over %d probes exceeds the %s tolerance %.3g",
			ErrNotEquivalent, rep.MaxAbsLogitDiff, rep.RelativeDiff, rep.Probes, dt, tol)
	}
	return rep, nil
}

// coarsestDType returns the float dtype with the fewest mantissa bits among
// the checkpoint's F32/F16/BF16 tensors.
func coarsestDType(dir string) (safetensors.DType, error) {
	c, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer c.Close()
	rank := map[safetensors.DType]int{safetensors.F32: 1, safetensors.F16: 2, safetensors.BF16: 3}
	best := safetensors.F32
	for _, n := range c.Names() {
		info, _ := c.Info(n)
		if rank[info.DType] > rank[best] {
			best = info.DType
		}
	}
	return best, nil
}
