package lora

import "math"

// exp32 is exp on the float32 path: expf, in float32 arithmetic, about 1.6×
// as fast as math.Exp here (BenchmarkExpf).
func exp32(x float32) float32 { return expf(x) }

// softmaxCausalRow turns row[:last+1] into probabilities and zeroes the rest.
func softmaxCausalRow[T float](row []T, last int) {
	if r32, ok := any(row).([]float32); ok {
		mx := r32[0]
		for j := 1; j <= last; j++ {
			mx = max(mx, r32[j])
		}
		var sum float32
		for j := 0; j <= last; j++ {
			e := exp32(r32[j] - mx)
			r32[j] = e
			sum += e
		}
		inv := 1 / sum
		for j := 0; j <= last; j++ {
			r32[j] *= inv
		}
		clear(r32[last+1:])
		return
	}
	mx := row[0]
	for j := 1; j <= last; j++ {
		mx = max(mx, row[j])
	}
	var sum float64
	for j := 0; j <= last; j++ {
		e := math.Exp(float64(row[j] - mx))
		row[j] = T(e)
		sum += e
	}
	for j := 0; j <= last; j++ {
		row[j] = T(float64(row[j]) / sum)
	}
	clear(row[last+1:])
}

func swiglu32(g, u, s []float32) {
	for i, x := range g {
		s[i] = x / (1 + exp32(-x)) * u[i]
	}
}

func swigluBack32(ds, g, u, dg, du []float32) {
	for i, x := range g {
		sg := 1 / (1 + exp32(-x))
		d := ds[i]
		du[i] = d * x * sg
		dg[i] = d * u[i] * sg * (1 + x*(1-sg))
	}
}
