package combine

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// mix combines equally shaped flat task tensors with the given weights by
// one of the non-SVD methods.
func mix(method Method, tensors [][]float64, weights []float64, density float64, signMethod string, rng *rand.Rand) ([]float64, error) {
	pruned := make([][]float64, len(tensors))
	for i, t := range tensors {
		switch method {
		case Linear:
			pruned[i] = t
		case TIES, MagnitudePrune:
			pruned[i] = MagnitudePruned(t, density)
		case DARELinear, DARETIES:
			if rng == nil {
				return nil, fmt.Errorf("%w: %s needs a random generator", ErrInvalid, method)
			}
			pruned[i] = RandomPruned(t, density, true, rng)
		default:
			return nil, fmt.Errorf("%w: %s is not an element-wise method", ErrInvalid, method)
		}
	}
	switch method {
	case TIES, DARETIES:
		return DisjointMerge(pruned, weights, MajoritySign(pruned, signMethod)), nil
	default:
		return WeightedSum(pruned, weights), nil
	}
}

// WeightedSum returns Σ wᵢ·tᵢ (task arithmetic).
func WeightedSum(tensors [][]float64, weights []float64) []float64 {
	out := make([]float64, len(tensors[0]))
	for i, t := range tensors {
		w := weights[i]
		for j, x := range t {
			out[j] += w * x
		}
	}
	return out
}

// MagnitudePruned returns a copy of t keeping its int(density·len(t))
// largest-magnitude entries (ties broken by position) and zeroing the rest;
// density ≥ 1 keeps everything.
func MagnitudePruned(t []float64, density float64) []float64 {
	out := slices.Clone(t)
	if density >= 1 {
		return out
	}
	k := int(density * float64(len(t)))
	idx := make([]int, len(t))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(math.Abs(t[b]), math.Abs(t[a])) })
	for _, i := range idx[k:] {
		out[i] = 0
	}
	return out
}

// RandomPruned returns a copy of t where each entry is kept with probability
// density (a Bernoulli draw per entry, in order) and, with rescale, divided
// by density (DARE's drop-and-rescale); density ≥ 1 keeps everything.
func RandomPruned(t []float64, density float64, rescale bool, rng *rand.Rand) []float64 {
	out := slices.Clone(t)
	if density >= 1 {
		return out
	}
	for i := range out {
		if rng.Float64() >= density {
			out[i] = 0
		} else if rescale {
			out[i] /= density
		}
	}
	return out
}

// MajoritySign elects, per entry, the sign (+1 or -1; ties go to +1) of the
// sum of the tensors ("total") or of the sum of their signs ("frequency"),
// and returns for each tensor the mask of entries whose sign equals it.
func MajoritySign(tensors [][]float64, method string) [][]bool {
	n := len(tensors[0])
	elected := make([]float64, n)
	for j := 0; j < n; j++ {
		s := 0.0
		for _, t := range tensors {
			if method == SignFrequency {
				s += sign(t[j])
			} else {
				s += t[j]
			}
		}
		elected[j] = 1
		if s < 0 {
			elected[j] = -1
		}
	}
	masks := make([][]bool, len(tensors))
	for i, t := range tensors {
		masks[i] = make([]bool, n)
		for j, x := range t {
			masks[i][j] = sign(x) == elected[j]
		}
	}
	return masks
}

// DisjointMerge returns, per entry, the mean of the weighted entries wᵢ·tᵢ
// selected by the masks (divided by max(1, count)).
func DisjointMerge(tensors [][]float64, weights []float64, masks [][]bool) []float64 {
	n := len(tensors[0])
	out := make([]float64, n)
	for j := 0; j < n; j++ {
		sum, count := 0.0, 0
		for i, t := range tensors {
			if masks[i][j] {
				sum += weights[i] * t[j]
				count++
			}
		}
		out[j] = sum / float64(max(count, 1))
	}
	return out
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
