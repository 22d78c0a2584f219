package vmath

import (
	"math"
	"testing"
)

func TestExpf(t *testing.T) {
	for x := float32(-87); x < 88.5; x += 0.0137 {
		want := math.Exp(float64(x))
		if got := float64(Expf(x)); math.Abs(got-want) > 3e-7*want {
			t.Fatalf("Expf(%v) = %v, want %v (rel err %.3g)", x, got, want, math.Abs(got-want)/want)
		}
	}
	if Expf(-110) != 0 || !math.IsInf(float64(Expf(100)), 1) || Expf(0) != 1 {
		t.Fatalf("Expf(-110) %v, Expf(100) %v, Expf(0) %v", Expf(-110), Expf(100), Expf(0))
	}
	if nan := float32(math.NaN()); !math.IsNaN(float64(Expf(nan))) {
		t.Fatal("Expf(NaN) is not NaN")
	}
}

var expSink float32

func BenchmarkExpf(b *testing.B) {
	var s float32
	for i := 0; i < b.N; i++ {
		s += Expf(float32(i&1023) * -0.01)
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

// TestExp32Inplace: the vector kernel (and its scalar tail) agrees with
// math.Exp within a few float32 ulp over the whole normal range, keeps NaN,
// and saturates instead of overflowing or going subnormal.
func TestExp32Inplace(t *testing.T) {
	bothPaths(t, func(vec bool) {
		n := 300_003 // not a multiple of 8: the tail runs too
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(-87 + 175*float64(i)/float64(n-1))
		}
		y := append([]float32(nil), x...)
		Exp32Inplace(y)
		for i, v := range x {
			want := math.Exp(float64(v))
			if got := float64(y[i]); !(math.Abs(got-want) <= 3e-7*want) {
				t.Fatalf("vector %v: exp(%v) = %v, want %v", vec, v, got, want)
			}
		}
		odd := []float32{float32(math.NaN()), -1000, -88, 1000, float32(math.Inf(-1)), float32(math.Inf(1)), 0, 1, float32(math.NaN())}
		Exp32Inplace(odd)
		if !math.IsNaN(float64(odd[0])) || !math.IsNaN(float64(odd[8])) {
			t.Fatalf("vector %v: exp(NaN) = %v, %v", vec, odd[0], odd[8])
		}
		for i, c := range []struct{ lo, hi float64 }{1: {0, 1.3e-38}, 2: {0, 1.3e-38}, 3: {2e38, math.Inf(1)}, 4: {0, 1.3e-38}, 5: {2e38, math.Inf(1)}, 6: {1, 1}, 7: {math.E * (1 - 3e-7), math.E * (1 + 3e-7)}} {
			if i == 0 {
				continue
			}
			if g := float64(odd[i]); !(g >= c.lo && g <= c.hi) {
				t.Fatalf("vector %v: exp of input %d = %v, want in [%v, %v]", vec, i, g, c.lo, c.hi)
			}
		}
	})
}

func BenchmarkExp32Inplace(b *testing.B) {
	x := make([]float32, 1024)
	b.SetBytes(4 * 1024)
	for b.Loop() {
		for i := range x {
			x[i] = float32(i&63) * -0.1
		}
		Exp32Inplace(x)
	}
}

// TestInvOnePlusExp32Inplace: 1/(1+exp(x)) within a few ulp of the float64
// value, exactly 1 and 0 far out, NaN kept.
func TestInvOnePlusExp32Inplace(t *testing.T) {
	bothPaths(t, func(vec bool) {
		n := 100_005
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(-100 + 200*float64(i)/float64(n-1))
		}
		y := append([]float32(nil), x...)
		InvOnePlusExp32Inplace(y)
		for i, v := range x {
			want := 1 / (1 + math.Exp(float64(v)))
			if got := float64(y[i]); !(math.Abs(got-want) <= 4e-7*want) && !(want < 1e-37 && got < 1e-37) {
				t.Fatalf("vector %v: 1/(1+exp(%v)) = %v, want %v", vec, v, got, want)
			}
		}
		odd := []float32{-1000, -20, 1000, 0, float32(math.NaN()), 1, 1, 1, float32(math.NaN())}
		InvOnePlusExp32Inplace(odd)
		if odd[0] != 1 || odd[1] != 1 || odd[2] > 1e-37 || odd[3] != 0.5 || !math.IsNaN(float64(odd[4])) || !math.IsNaN(float64(odd[8])) {
			t.Fatalf("vector %v: 1/(1+exp(x)) of -1000, -20, 1000, 0, NaN … NaN = %v", vec, odd)
		}
	})
}

// bothPaths runs check with the vector kernels (where the CPU has them) and
// with the scalar code.
func bothPaths(t *testing.T, check func(vec bool)) {
	t.Helper()
	saved := vector
	defer func() { vector = saved }()
	for _, vec := range []bool{true, false} {
		if vec && !saved {
			continue
		}
		vector = vec
		check(vec)
	}
}
