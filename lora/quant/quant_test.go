package quant

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// reference is testdata/bnb_reference.json (testdata/reference.py).
type reference struct {
	NF4Code     []float32 `json:"nf4_code"`
	FP4Code     []float32 `json:"fp4_code"`
	DynamicCode []float32 `json:"dynamic_code"`
	Cases       map[string]refCase
}

type refCase struct {
	Data    []byte    `json:"-"`
	RawData []int     `json:"data"`
	Absmax  []float32 `json:"absmax"`
	QAbsmax []int     `json:"qabsmax"`
	Absmax2 []float32 `json:"absmax2"`
	Offset  float32   `json:"offset"`
	Dequant []float32 `json:"dequant_every_7th"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	raw, err := os.ReadFile("testdata/bnb_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	r.Cases = map[string]refCase{}
	for _, name := range []string{"nf4_64", "nf4_64_dq", "fp4_128_dq"} {
		var c refCase
		if err := json.Unmarshal(all[name], &c); err != nil {
			t.Fatal(err)
		}
		r.Cases[name] = c
	}
	return r
}

// referenceInput is the tensor reference.py quantizes, made the same way.
func referenceInput() []float32 {
	n := 64*260 + 37
	w := make([]float32, n)
	for i := range w {
		w[i] = float32((i*7919)%2001-1000) / 50000
	}
	w[5] = 0.5
	return w
}

// The code books equal the published constants: NF4 as the QLoRA paper
// (appendix E) and bitsandbytes list it; FP4 and the 8-bit dynamic code as
// bitsandbytes builds them (checked against the PyTorch reference).
func TestCodeBooks(t *testing.T) {
	r := loadReference(t)
	// QLoRA paper, appendix E ("NormalFloat 4-bit data type"), exact values.
	paper := []float64{-1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
		-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0,
		0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
		0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1}
	for i, v := range paper {
		if NF4Code[i] != float32(v) || NF4Code[i] != r.NF4Code[i] {
			t.Errorf("NF4Code[%d] = %v, want %v", i, NF4Code[i], v)
		}
	}
	for i := range FP4Code {
		if FP4Code[i] != r.FP4Code[i] {
			t.Errorf("FP4Code[%d] = %v, want %v", i, FP4Code[i], r.FP4Code[i])
		}
	}
	if len(r.DynamicCode) != 256 {
		t.Fatalf("reference dynamic code has %d entries", len(r.DynamicCode))
	}
	for i := range DynamicCode { // within 2 ulps: torch.linspace's rounding (see DynamicCode)
		if d := math.Abs(float64(DynamicCode[i] - r.DynamicCode[i])); d > 2.5e-7*math.Abs(float64(r.DynamicCode[i])) {
			t.Errorf("DynamicCode[%d] = %v, want %v", i, DynamicCode[i], r.DynamicCode[i])
		}
	}
}

// Quantizing the reference tensor gives bitsandbytes' layout byte for byte:
// the packed nibbles (first value high), the blocks' absmax, and under
// double quantization the 8-bit absmax codes, the per-256-block scales and
// the offset; dequantizing gives the same float32 values.
func TestBitsandbytesLayout(t *testing.T) {
	r := loadReference(t)
	w := referenceInput()
	for name, c := range map[string]Config{
		"nf4_64":     {Type: NF4, BlockSize: 64},
		"nf4_64_dq":  {Type: NF4, BlockSize: 64, DoubleQuant: true},
		"fp4_128_dq": {Type: FP4, BlockSize: 128, DoubleQuant: true},
	} {
		ref := r.Cases[name]
		q, err := Quantize(w, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(q.Data) != len(ref.RawData) {
			t.Fatalf("%s: %d bytes, want %d", name, len(q.Data), len(ref.RawData))
		}
		bad := 0
		for i, b := range ref.RawData {
			if q.Data[i] != byte(b) {
				if bad++; bad < 5 {
					t.Errorf("%s: byte %d = %#02x, want %#02x", name, i, q.Data[i], b)
				}
			}
		}
		if c.DoubleQuant {
			if math.Abs(float64(q.Offset-ref.Offset)) > 1e-7*math.Abs(float64(ref.Offset)) { // torch sums in float32
				t.Errorf("%s: offset %v, want %v", name, q.Offset, ref.Offset)
			}
			for i, v := range ref.QAbsmax {
				if int(q.QAbsmax[i]) != v {
					t.Errorf("%s: qabsmax[%d] = %d, want %d", name, i, q.QAbsmax[i], v)
				}
			}
			for i, v := range ref.Absmax2 {
				if math.Abs(float64(q.Absmax2[i]-v)) > 1e-7*math.Abs(float64(v)) {
					t.Errorf("%s: absmax2[%d] = %v, want %v", name, i, q.Absmax2[i], v)
				}
			}
		} else {
			for i, v := range ref.Absmax {
				if q.Absmax[i] != v {
					t.Errorf("%s: absmax[%d] = %v, want %v", name, i, q.Absmax[i], v)
				}
			}
		}
		dq := make([]float32, len(w))
		q.Dequantize(0, len(w), dq)
		for j, v := range ref.Dequant {
			// the absmax of double quantization carries DynamicCode's ulps
			if got := dq[7*j]; math.Abs(float64(got-v)) > 5e-7*math.Abs(float64(v)) {
				t.Errorf("%s: dequantized[%d] = %v, want %v", name, 7*j, got, v)
			}
		}
		if t.Failed() {
			return
		}
	}
}

// The reconstruction error is within each block's bound: half the widest
// gap of the code book times absmax, plus what double quantization costs
// the absmax itself; any sub-range dequantizes as the whole does.
func TestQuantizeErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, 64*70+9)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.02)
	}
	w[100] = 0.7
	halfGap := func(code []float32) float64 {
		s := append([]float32(nil), code...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		g := 0.0
		for i := 1; i < len(s); i++ {
			g = math.Max(g, float64(s[i]-s[i-1])/2)
		}
		return g
	}
	for _, c := range []Config{
		{Type: NF4, BlockSize: 64}, {Type: NF4, BlockSize: 64, DoubleQuant: true},
		{Type: FP4, BlockSize: 32, DoubleQuant: true}, {Type: INT8, BlockSize: 128},
		{Type: INT8, BlockSize: 64, DoubleQuant: true}, {Type: NF4, BlockSize: 4096},
	} {
		q, err := Quantize(w, c)
		if err != nil {
			t.Fatal(err)
		}
		gap := 0.5 / 127
		if c.Type != INT8 {
			gap = halfGap(c.Type.code()[:])
		}
		dq := make([]float32, len(w))
		q.Dequantize(0, len(w), dq)
		var sq, ref float64
		for b := 0; b*c.BlockSize < len(w); b++ {
			blk := w[b*c.BlockSize : min(len(w), (b+1)*c.BlockSize)]
			var am float64
			for _, x := range blk {
				am = math.Max(am, math.Abs(float64(x)))
			}
			amErr := math.Abs(float64(q.BlockAbsmax(b)) - am)
			if !c.DoubleQuant && amErr != 0 {
				t.Fatalf("%+v: block %d absmax %v, want %v", c, b, q.BlockAbsmax(b), am)
			}
			bound := gap*am + amErr + 1e-7*am
			for j, x := range blk {
				e := math.Abs(float64(dq[b*c.BlockSize+j]) - float64(x))
				if e > bound {
					t.Fatalf("%+v: element %d error %g > bound %g", c, b*c.BlockSize+j, e, bound)
				}
				sq += e * e
				ref += float64(x) * float64(x)
			}
		}
		t.Logf("%s block %d dq=%v: relative RMS error %.4f, %.3f bits/param", c.Type, c.BlockSize, c.DoubleQuant, math.Sqrt(sq/ref), 8*float64(q.Bytes())/float64(len(w)))
		for _, r := range [][2]int{{0, 1}, {1, 2}, {3, 70}, {63, 129}, {len(w) - 5, len(w)}, {17, 17}} {
			part := make([]float32, r[1]-r[0])
			q.Dequantize(r[0], r[1], part)
			for i, v := range part {
				if v != dq[r[0]+i] {
					t.Fatalf("%+v: Dequantize(%d, %d)[%d] = %v, whole gives %v", c, r[0], r[1], i, v, dq[r[0]+i])
				}
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Type: "nf3", BlockSize: 64}, {Type: NF4, BlockSize: 48}, {Type: NF4}, {Type: INT8, BlockSize: 8192}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := Quantize([]float32{1, float32(math.Inf(1))}, Config{Type: NF4, BlockSize: 64}); err == nil {
		t.Error("an infinite weight was quantized")
	}
}

// The assembly decoder (where the CPU has it) and the portable one agree
// bit for bit on every range.
func TestDecodePaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w := make([]float32, 64*9+13)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	for _, typ := range []Type{NF4, FP4} {
		q, err := Quantize(w, Config{Type: typ, BlockSize: 64, DoubleQuant: true})
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			lo := rng.IntN(len(w))
			hi := lo + rng.IntN(len(w)-lo+1)
			a := make([]float32, hi-lo)
			b := make([]float32, hi-lo)
			q.Dequantize(lo, hi, a)
			useAsm = false
			q.Dequantize(lo, hi, b)
			useAsm = true
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("%s [%d,%d): element %d: %v (default path), %v (Go)", typ, lo, hi, lo+i, a[i], b[i])
				}
			}
		}
	}
}
