package merge

import (
	"context"
	"errors"

	"github.com/loraflow/loraflow/lora"
	"github.com/loraflow/loraflow/lora/peft"
)

// Kinds of lora.InputError raised by this package, beside
// lora.KindAdapterMismatch.
const (
	KindNonFiniteMerge = "NonFiniteMerge"
	KindNotEquivalent  = "MergeNotEquivalent"
)

// asInputError turns errors about bad input into *lora.InputError, so that
// activities report them as non-retryable.
func asInputError(err error) error {
	var ie *lora.InputError
	switch {
	case err == nil || errors.As(err, &ie):
		return err
	case errors.Is(err, ErrMismatch):
		return &lora.InputError{Kind: lora.KindAdapterMismatch, Msg: "the adapter does not fit the base checkpoint", Err: err}
	case errors.Is(err, ErrNonFinite):
		return &lora.InputError{Kind: KindNonFiniteMerge, Msg: "safe merge refused", Err: err}
	case errors.Is(err, ErrNotEquivalent):
		return &lora.InputError{Kind: KindNotEquivalent, Msg: "equivalence check failed", Err: err}
	}
	return err
}

type engineModel struct{ m *lora.Model }

func (e engineModel) Logits(ctx context.Context, a *peft.Adapter, tokens []int) ([]float32, error) {
	return lora.Logits(ctx, e.m, a, tokens)
}

func (e engineModel) VocabSize() int { return e.m.Config().VocabSize }

// LoadEngineModel is the Loader of the loraflow engine (lora.LoadModel).
func LoadEngineModel(_ context.Context, dir string) (Model, error) {
	m, err := lora.LoadModel(dir)
	if err != nil {
		return nil, err
	}
	return engineModel{m}, nil
}

// Equivalence checks, with the loraflow engine, that the merged model in
// mergedDir computes what the base in baseDir with the adapter in
// adapterDir (weight 1) computes; see EquivalenceWith.
func Equivalence(ctx context.Context, baseDir, adapterDir, mergedDir string, probes [][]int, tol float64) (*EquivalenceReport, error) {
	a, err := peft.Load(adapterDir)
	if err != nil {
		return nil, err
	}
	return EquivalenceAdapters(ctx, baseDir, []Weighted{{Name: adapterDir, Adapter: a, Weight: 1}}, mergedDir, probes, tol)
}

// EquivalenceAdapters is Equivalence for several weighted adapters.
func EquivalenceAdapters(ctx context.Context, baseDir string, adapters []Weighted, mergedDir string, probes [][]int, tol float64) (*EquivalenceReport, error) {
	rep, err := EquivalenceWith(ctx, LoadEngineModel, baseDir, adapters, mergedDir, probes, tol)
	return rep, asInputError(err)
}

// EngineVerifier returns an Options.Verify that checks the merged folder
// against base + adapters with the loraflow engine (probes nil: the default
// probes; tol ≤ 0: the dtype's default tolerance).
func EngineVerifier(baseDir string, adapters []Weighted, probes [][]int, tol float64) func(ctx context.Context, dir string) (*EquivalenceReport, error) {
	return func(ctx context.Context, dir string) (*EquivalenceReport, error) {
		return EquivalenceAdapters(ctx, baseDir, adapters, dir, probes, tol)
	}
}
