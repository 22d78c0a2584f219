package report

import "math"

// DefaultSmoothing is the weight of the past in Smooth for the loss curve.
// TensorBoard's slider defaults to 0.6 over raw summaries; the curve here
// holds up to a thousand points (steps averaged in buckets beyond that), so
// it smooths more.
const DefaultSmoothing = 0.9

// Smooth is TensorBoard's scalar smoothing (and W&B's "exponential moving
// average", which matches it): a debiased exponential moving average,
//
//	last = last·w + (1−w)·x_i,  s_i = last / (1 − w^(i+1))
//
// (tensorboard/components/vz_line_chart2/line-chart.ts, resmoothDataset).
// The debias term keeps the first points from being pulled towards zero.
// Non-finite values are carried through unsmoothed, as TensorBoard does.
func Smooth(v []float64, weight float64) []float64 {
	out := make([]float64, len(v))
	if weight <= 0 {
		copy(out, v)
		return out
	}
	last, n := 0.0, 0
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			out[i] = x
			continue
		}
		last = last*weight + (1-weight)*x
		n++
		out[i] = last / (1 - math.Pow(weight, float64(n)))
	}
	return out
}
