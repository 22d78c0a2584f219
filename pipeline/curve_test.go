package pipeline

import "testing"

func TestDownsampleKeepsShapeAndSteps(t *testing.T) {
	v := make([]float64, 2500)
	for i := range v {
		v[i] = float64(i)
	}
	d := Downsample(v, 1000)
	if len(d) != 1000 || d[0] != 0.5 || CurveStep(999, 1000, 2500) != 2500 || CurveStep(0, 1000, 2500) != 2 {
		t.Fatalf("downsample: len %d first %v", len(d), d[0])
	}
	if got := Downsample(v[:10], 1000); len(got) != 10 {
		t.Fatal("short curves must stay as they are")
	}
}
