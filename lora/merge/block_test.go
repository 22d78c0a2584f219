package merge

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loraflow/loraflow/lora/safetensors"
)

// TestFinishMatchesReference: the fused encode loops give, for every dtype
// and both modes (W' given, or W0 + ΔW), the bytes of the reference
// converters, the largest |W' − W0| and the first non-finite index.
func TestFinishMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specials := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65520, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), // BF16 ties, to even down and up
		math.Float32frombits(0x7f7fffff), math.Float32frombits(1)}
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16} {
		for _, addW0 := range []bool{false, true} {
			n := 4000
			w0 := make([]float32, n)
			delta := make([]float32, n)
			for i := range n {
				w0[i] = float32(rng.NormFloat64())
				delta[i] = float32(rng.NormFloat64() * 0.01)
				if i%97 == 0 {
					delta[i] = specials[(i/97)%len(specials)]
				}
			}
			raw := make([]byte, n*dt.Size())
			encodeRef(dt, w0, raw)
			stored := make([]float32, n) // W0 as stored (rounded to the dtype)
			decode(dt, raw, stored)
			want := make([]float32, n) // W'
			for i := range n {
				want[i] = stored[i] + delta[i]
			}
			wantRaw := make([]byte, len(raw))
			encodeRef(dt, want, wantRaw)
			var wantMax float32
			wantBad := -1
			back := make([]float32, n)
			decode(dt, wantRaw, back)
			for i := range n {
				if d := abs32(want[i] - stored[i]); d > wantMax {
					wantMax = d
				}
				if x := float64(back[i]); (math.IsInf(x, 0) || math.IsNaN(x)) && wantBad < 0 {
					wantBad = i
				}
			}
			w := make([]float32, n)
			if addW0 {
				copy(w, delta)
			} else {
				copy(w, want)
			}
			gotMax, gotBad := finish(dt, w, raw, addW0)
			if string(raw) != string(wantRaw) {
				for i := range n {
					if b := dt.Size(); string(raw[i*b:(i+1)*b]) != string(wantRaw[i*b:(i+1)*b]) {
						t.Fatalf("%s addW0=%v: element %d (%v) encoded as %x, want %x", dt, addW0, i, want[i], raw[i*b:(i+1)*b], wantRaw[i*b:(i+1)*b])
					}
				}
			}
			if gotMax != wantMax || gotBad != wantBad {
				t.Errorf("%s addW0=%v: max delta %v, first bad %d; want %v, %d", dt, addW0, gotMax, gotBad, wantMax, wantBad)
			}
			if wantBad >= 0 && math.Float32bits(w[wantBad]) != math.Float32bits(want[wantBad]) && !math.IsNaN(float64(want[wantBad])) {
				t.Errorf("%s addW0=%v: w[%d] = %v, want W' = %v", dt, addW0, wantBad, w[wantBad], want[wantBad])
			}
		}
	}
}

func encodeRef(dt safetensors.DType, w []float32, b []byte) {
	for i, x := range w {
		switch dt {
		case safetensors.F32:
			u := math.Float32bits(x)
			b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		case safetensors.F16:
			h := safetensors.Float32ToF16(x)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		case safetensors.BF16:
			h := safetensors.Float32ToBF16(x)
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
	}
}
