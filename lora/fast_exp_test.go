package lora

import (
	"math"
	"testing"
)

func TestExpf(t *testing.T) {
	for x := float32(-87); x < 88.5; x += 0.0137 {
		want := math.Exp(float64(x))
		if got := float64(expf(x)); math.Abs(got-want) > 3e-7*want {
			t.Fatalf("expf(%v) = %v, want %v (rel err %.3g)", x, got, want, math.Abs(got-want)/want)
		}
	}
	if expf(-110) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(0) != 1 {
		t.Fatalf("expf(-110) %v, expf(100) %v, expf(0) %v", expf(-110), expf(100), expf(0))
	}
	if nan := float32(math.NaN()); !math.IsNaN(float64(expf(nan))) {
		t.Fatal("expf(NaN) is not NaN")
	}
}

var expSink float32

func BenchmarkExpf(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += expf(float32(i&1023) * -0.01)
	}
	expSink = s
}

func BenchmarkMathExp(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += float32(math.Exp(float64(float32(i&1023) * -0.01)))
	}
	expSink = s
}
