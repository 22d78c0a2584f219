package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func f32bytes(v ...float32) []byte {
	b, _ := EncodeFloat32(F32, v)
	return b
}

// The expected bytes below are the test vectors of the reference Rust
// implementation (huggingface/safetensors, safetensors/src/tensor.rs:
// test_serialization, test_empty, test_serialization_forced_alignement).
func TestWriteFileMatchesReferenceVectors(t *testing.T) {
	data := f32bytes(0, 1, 2, 3, 4, 5)
	hdr := func(s string) []byte {
		b := make([]byte, 8, 8+len(s))
		binary.LittleEndian.PutUint64(b, uint64(len(s)))
		return append(b, s...)
	}
	cases := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		want    []byte
	}{
		{"serialization", []Tensor{{"attn.0", F32, []int{1, 2, 3}, data}}, nil,
			append(hdr(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`), data...)},
		{"forced alignment", []Tensor{{"attn0", F32, []int{1, 1, 2, 3}, data}}, nil,
			append(hdr(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `), data...)},
		{"empty", nil, nil, hdr(`{}      `)},
		{"empty with metadata", nil, map[string]string{"framework": "pt"}, hdr(`{"__metadata__":{"framework":"pt"}}     `)},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		if err := WriteFile(path, c.tensors, c.meta); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatalf("%s: reopen: %v", c.name, err)
		}
		if len(f.Names()) != len(c.tensors) || !reflect.DeepEqual(f.Metadata(), c.meta) {
			t.Errorf("%s: reopened names %v metadata %v", c.name, f.Names(), f.Metadata())
		}
		f.Close()
	}
}

type refTensor struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// testdata/reference.safetensors was written by testdata/gen_reference.py
// from torch tensors. Reading it and writing the same tensors back must give
// the same bytes.
func TestReferenceFixtureRoundTrip(t *testing.T) {
	path := filepath.Join("testdata", "reference.safetensors")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); !reflect.DeepEqual(got, map[string]string{"format": "pt"}) {
		t.Errorf("metadata %v", got)
	}
	var tensors []Tensor
	for _, name := range f.Names() {
		ti, _ := f.Info(name)
		b, err := f.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, Tensor{Name: name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	if len(tensors) != 13 {
		t.Fatalf("%d tensors, want 13", len(tensors))
	}
	out := filepath.Join(t.TempDir(), "out.safetensors")
	if err := WriteFile(out, tensors, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Errorf("rewritten file differs from the reference:\n got %q\nwant %q", got[:min(len(got), 600)], want[:min(len(want), 600)])
	}

	// Values written by torch.
	check := func(name string, want []float32) {
		t.Helper()
		v, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	check("scalar", []float32{2})
	check("double", []float32{float32(1.0 / 3.0), float32(-2.5e-300)})
	check("naïve \"quoted\"\tname", []float32{1.5})
	check("empty", []float32{})
	if ti, _ := f.Info("scalar"); len(ti.Shape) != 0 || ti.NumElements() != 1 {
		t.Errorf("scalar info %+v", ti)
	}
	if ti, _ := f.Info("model.embed_tokens.weight"); ti.DType != BF16 || !reflect.DeepEqual(ti.Shape, []int{5, 2}) {
		t.Errorf("embed info %+v", ti)
	}
	ids, _ := f.Bytes("ids")
	if v := int64(binary.LittleEndian.Uint64(ids[16:])); v != 1<<40 {
		t.Errorf("ids[2] = %d", v)
	}
	if _, err := f.Float32("ids"); !errors.Is(err, ErrUnsupportedDType) || !strings.Contains(err.Error(), `"ids"`) {
		t.Errorf("Float32 on I64: %v", err)
	}
}

func TestRoundTripAllDTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tensors []Tensor
	for i, dt := range []DType{BOOL, U8, I8, F8E5M2, F8E4M3, F8E8M0, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64} {
		shape := []int{1 + i%3, 2 + i%4}
		data := make([]byte, shape[0]*shape[1]*dt.Size())
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		tensors = append(tensors, Tensor{Name: "t." + strings.ToLower(string(dt)), DType: dt, Shape: shape, Data: data})
	}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	meta := map[string]string{"b": "2", "a": "1 \" \\ \n é"}
	if err := WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata(), meta) {
		t.Errorf("metadata %v", f.Metadata())
	}
	for _, tt := range tensors {
		ti, ok := f.Info(tt.Name)
		if !ok || ti.DType != tt.DType || !reflect.DeepEqual(ti.Shape, tt.Shape) {
			t.Errorf("%s: info %+v", tt.Name, ti)
		}
		b, _ := f.Bytes(tt.Name)
		if !bytes.Equal(b, tt.Data) {
			t.Errorf("%s: bytes differ", tt.Name)
		}
	}
	// Data laid out by descending alignment: U64 first, BOOL last; 8-byte
	// types start 8-aligned in the file.
	infos := f.Infos()
	if infos[0].DType != U64 || infos[len(infos)-1].DType != BOOL {
		t.Errorf("order %v ... %v", infos[0].DType, infos[len(infos)-1].DType)
	}
	// FromBytes gives the same view as the mapping.
	raw, _ := os.ReadFile(path)
	g, err := FromBytes("mem", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Infos(), f.Infos()) {
		t.Error("FromBytes and Open disagree")
	}
}

func TestFloatRoundTrips(t *testing.T) {
	v := []float32{0, 1, -2.5, 3.140625, 1e-3, -65504, 1e-7}
	for _, dt := range []DType{F32, F16, BF16, F64} {
		b, err := EncodeFloat32(dt, v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFloat32(dt, b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			tol := map[DType]float64{F32: 0, F64: 0, F16: 1.0 / 1024, BF16: 1.0 / 128}[dt]
			if d := math.Abs(float64(got[i] - v[i])); d > tol*math.Abs(float64(v[i]))+6e-8*btof(dt == F16) {
				t.Errorf("%s: %v -> %v", dt, v[i], got[i])
			}
		}
	}
	if _, err := EncodeFloat32(I32, v); err == nil {
		t.Error("EncodeFloat32(I32) succeeded")
	}
	if _, err := DecodeFloat32(F16, []byte{1, 2, 3}); err == nil {
		t.Error("DecodeFloat32 of an odd byte count succeeded")
	}
	// Every finite half and bfloat16 survives decode then encode exactly.
	for h := 0; h < 1<<16; h++ {
		x := F16ToFloat32(uint16(h))
		if x == x { // not NaN
			if got := Float32ToF16(x); got != uint16(h) {
				t.Fatalf("f16 %#04x -> %v -> %#04x", h, x, got)
			}
		} else if y := F16ToFloat32(Float32ToF16(x)); y == y {
			t.Fatalf("f16 NaN %#04x lost", h)
		}
		y := BF16ToFloat32(uint16(h))
		if y == y {
			if got := Float32ToBF16(y); got != uint16(h) {
				t.Fatalf("bf16 %#04x -> %v -> %#04x", h, y, got)
			}
		} else if z := BF16ToFloat32(Float32ToBF16(y)); z == z {
			t.Fatalf("bf16 NaN %#04x lost", h)
		}
	}
	known := []struct {
		in  float32
		f16 uint16
	}{{1, 0x3c00}, {65504, 0x7bff}, {65520, 0x7c00}, {65519.99, 0x7bff}, {0x1p-24, 0x0001}, {0x1p-25, 0}, {0x3p-25, 0x0002}, {float32(math.Copysign(0, -1)), 0x8000}, {float32(math.Inf(-1)), 0xfc00}}
	for _, k := range known {
		if got := Float32ToF16(k.in); got != k.f16 {
			t.Errorf("Float32ToF16(%v) = %#04x, want %#04x", k.in, got, k.f16)
		}
	}
}

func btof(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// testdata/conversions.json holds torch's float16 and bfloat16 conversions
// of 5,000 float32 values (round to nearest, ties to even).
func TestConversionsMatchTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "conversions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		F32  []uint32 `json:"f32"`
		F16  []uint16 `json:"f16"`
		BF16 []uint16 `json:"bf16"`
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.F32) < 5000 || len(fx.F16) != len(fx.F32) || len(fx.BF16) != len(fx.F32) {
		t.Fatalf("fixture sizes %d %d %d", len(fx.F32), len(fx.F16), len(fx.BF16))
	}
	bad := 0
	for i, b := range fx.F32 {
		x := math.Float32frombits(b)
		if got := Float32ToF16(x); got != fx.F16[i] {
			bad++
			t.Errorf("f16(%v [%#08x]) = %#04x, torch %#04x", x, b, got, fx.F16[i])
		}
		if got := Float32ToBF16(x); got != fx.BF16[i] {
			bad++
			t.Errorf("bf16(%v [%#08x]) = %#04x, torch %#04x", x, b, got, fx.BF16[i])
		}
		if bad > 10 {
			t.Fatal("too many mismatches")
		}
	}
}
