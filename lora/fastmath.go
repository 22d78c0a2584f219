package lora

import "math"

// softmaxCausalRow turns row[:last+1] into probabilities and zeroes the rest.
func softmaxCausalRow[T float](row []T, last int) {
	if r32, ok := any(row).([]float32); ok {
		softmaxRow32(r32, last)
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
