package pipeline

// MaxCurvePoints bounds the loss curve carried through Temporal payloads.
const MaxCurvePoints = 1000

// Downsample keeps at most n points of a curve, averaging buckets of
// consecutive steps.
func Downsample(v []float64, n int) []float64 {
	if len(v) <= n {
		return v
	}
	out := make([]float64, n)
	for i := range out {
		lo, hi := i*len(v)/n, (i+1)*len(v)/n
		var sum float64
		for _, x := range v[lo:hi] {
			sum += x
		}
		out[i] = sum / float64(hi-lo)
	}
	return out
}

// CurveStep is the training step of point i of a curve of n points over
// steps steps (the last step of its bucket when downsampled).
func CurveStep(i, n, steps int) int {
	if n == 0 || steps <= n {
		return i + 1
	}
	return (i + 1) * steps / n
}
