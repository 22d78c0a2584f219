package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// nativeLittleEndian is true on hosts whose float32 memory layout is the
// file's, so F32 data can be copied as bytes.
var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types this package knows. Every type can be read as raw bytes;
// F32, F16, BF16 and F64 also convert to and from float32.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	C64    DType = "C64"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// dtypeRank is the declaration order of the reference implementation's Dtype
// enum ("increasing alignment order"); the writer sorts tensors by descending
// rank, then by name, as the reference serializer does.
var dtypeRank = map[DType]int{
	BOOL: 0, U8: 1, I8: 2, F8E5M2: 3, F8E4M3: 4, F8E8M0: 5, I16: 6, U16: 7,
	F16: 8, BF16: 9, I32: 10, U32: 11, F32: 12, C64: 13, F64: 14, I64: 15, U64: 16,
}

var dtypeSize = map[DType]int{
	BOOL: 1, U8: 1, I8: 1, F8E5M2: 1, F8E4M3: 1, F8E8M0: 1, I16: 2, U16: 2,
	F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, C64: 8, F64: 8, I64: 8, U64: 8,
}

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSize[d] }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { _, ok := dtypeSize[d]; return ok }

// IsFloat reports whether d converts to and from float32 with DecodeFloat32
// (F32, F16, BF16, F64).
func (d DType) IsFloat() bool {
	switch d {
	case F32, F16, BF16, F64:
		return true
	}
	return false
}

// DecodeFloat32 converts little-endian elements of type dt to a new []float32.
// F64 values are rounded to nearest float32.
func DecodeFloat32(dt DType, b []byte) ([]float32, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("safetensors: cannot convert dtype %q to float32 (want F32, F16, BF16 or F64)", dt)
	}
	size := dt.Size()
	if len(b)%size != 0 {
		return nil, fmt.Errorf("safetensors: %d bytes is not a whole number of %s elements", len(b), dt)
	}
	out := make([]float32, len(b)/size)
	switch dt {
	case F32:
		if nativeLittleEndian && len(out) > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(b)), b)
			break
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BF16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	}
	return out, nil
}

// EncodeFloat32 converts v to little-endian elements of type dt (F32, F16,
// BF16 or F64). Narrowing conversions round to nearest, ties to even; values
// beyond the range of F16 become ±Inf; NaN stays NaN.
func EncodeFloat32(dt DType, v []float32) ([]byte, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("safetensors: cannot convert float32 to dtype %q (want F32, F16, BF16 or F64)", dt)
	}
	out := make([]byte, len(v)*dt.Size())
	switch dt {
	case F32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
	case F16:
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], Float32ToF16(x))
		}
	case BF16:
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], Float32ToBF16(x))
		}
	case F64:
		for i, x := range v {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(float64(x)))
		}
	}
	return out, nil
}

// F16ToFloat32 converts IEEE 754 half-precision bits to float32 (exactly).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zero or subnormal: mant × 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		if mant == 0 && sign != 0 {
			return math.Float32frombits(sign)
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToF16 converts f to IEEE 754 half-precision bits, rounding to
// nearest with ties to even. Overflow gives ±Inf; NaN gives a quiet NaN.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e >= 1 { // normal half
		r := uint32(e)<<10 | mant>>13
		rem := mant & 0x1fff
		if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
			r++ // a carry into the exponent is correct, up to Inf
		}
		return sign | uint16(r)
	}
	// Subnormal half (or zero): value = m × 2^(e-14) in units of 2^-24.
	if exp == 0 {
		return sign // float32 subnormals are far below half's smallest subnormal
	}
	m := mant | 0x800000
	shift := uint32(14 - e)
	if shift > 24 {
		return sign
	}
	r := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || (rem == half && r&1 == 1) {
		r++
	}
	return sign | uint16(r)
}

// BF16ToFloat32 converts bfloat16 bits to float32 (exactly).
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts f to bfloat16 bits, rounding to nearest with ties to
// even; NaN gives a quiet NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
