package merge

import (
	"encoding/binary"
	"math"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/loraflow/loraflow/lora/safetensors"
)

// The per-block arithmetic of a merge: decode the stored W0, add ΔW with
// one matrix product, encode W' back in place. These loops carry the whole
// CPU cost of a merge, so they avoid per-element calls and bounds checks.

// addDelta puts rows [r0, r1) of c's ΔW (in the base tensor's layout, with
// cols columns) into dst (accumulate: added to it) with one GEMM:
// alpha·B[r0:r1]·A, or, for fan_in_fan_out layers, alpha·Aᵀ[r0:r1]·Bᵀ. It
// runs on the BLAS that blas32 uses (OpenBLAS when the lora package is
// built with -tags openblas, gonum otherwise). Every element is a dot
// product over the rank in a fixed order, so the result does not depend on
// the block's rows.
func addDelta(dst []float32, c contribution, r0, r1, cols int, accumulate bool) {
	impl := blas32.Implementation()
	m := r1 - r0
	if m == 0 || cols == 0 {
		return
	}
	var beta float32
	if accumulate {
		beta = 1
	}
	if c.r == 0 {
		if !accumulate {
			clear(dst[:m*cols])
		}
		return
	}
	if !c.fanInFanOut {
		// W is [out, in]: rows are outputs, B[r0:r1] is m×r, A is r×in.
		impl.Sgemm(blas.NoTrans, blas.NoTrans, m, cols, c.r, c.alpha,
			c.b[r0*c.r:r1*c.r], c.r, c.a, c.in, beta, dst[:m*cols], cols)
		return
	}
	// W is [in, out]: rows are inputs, Aᵀ[r0:r1] is m×r (A[:, r0:r1]
	// transposed), Bᵀ is r×out.
	impl.Sgemm(blas.Trans, blas.NoTrans, m, cols, c.r, c.alpha,
		c.a[r0:], c.in, c.bt, c.out, beta, dst[:m*cols], cols)
}

// littleEndian reports whether this machine stores a uint16 as safetensors
// does, so that a block's bytes can be read as []uint16 in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// halves views b (2·n bytes) as n uint16; only on little-endian machines.
func halves(b []byte, n int) []uint16 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b[:2*n]))), n)
}

// decode converts little-endian F32/F16/BF16 elements of b into w.
func decode(dt safetensors.DType, b []byte, w []float32) {
	switch dt {
	case safetensors.F32:
		b = b[:4*len(w)]
		for i := range w {
			w[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case safetensors.F16:
		b = b[:2*len(w)]
		for i := range w {
			w[i] = safetensors.F16ToFloat32(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
		}
	case safetensors.BF16:
		if littleEndian {
			h := halves(b, len(w))
			h = h[:len(w)]
			for i := range w {
				w[i] = math.Float32frombits(uint32(h[i]) << 16)
			}
			return
		}
		b = b[:2*len(w)]
		for i := range w {
			w[i] = math.Float32frombits(uint32(b[2*i])<<16 | uint32(b[2*i+1])<<24)
		}
	}
}

// finish encodes W' into b, which holds W0 in the same dtype, and returns
// the largest |W' − W0| and the index of the first value that is not finite
// once encoded (F16 overflows above 65504), -1 when none. W' is w, or
// W0 + w when addW0 (w then holds ΔW, and only w[firstBad] is set to W').
func finish(dt safetensors.DType, w []float32, b []byte, addW0 bool) (maxDelta float32, firstBad int) {
	firstBad = -1
	switch dt {
	case safetensors.F32:
		b = b[:4*len(w)]
		for i, x := range w {
			o := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			if addW0 {
				x += o
			}
			bits := math.Float32bits(x)
			if bits&0x7f800000 == 0x7f800000 && firstBad < 0 {
				firstBad, w[i] = i, x
			}
			if d := abs32(x - o); d > maxDelta {
				maxDelta = d
			}
			binary.LittleEndian.PutUint32(b[4*i:], bits)
		}
	case safetensors.F16:
		b = b[:2*len(w)]
		for i, x := range w {
			o := safetensors.F16ToFloat32(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
			if addW0 {
				x += o
			}
			h := safetensors.Float32ToF16(x) // may overflow to Inf
			if h&0x7c00 == 0x7c00 && firstBad < 0 {
				firstBad, w[i] = i, x
			}
			if d := abs32(x - o); d > maxDelta {
				maxDelta = d
			}
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
	case safetensors.BF16:
		if littleEndian {
			return finishBF16(w, halves(b, len(w)), addW0)
		}
		b = b[:2*len(w)]
		for i, x := range w {
			o := math.Float32frombits(uint32(b[2*i])<<16 | uint32(b[2*i+1])<<24)
			if addW0 {
				x += o
			}
			h := safetensors.Float32ToBF16(x)
			if h&0x7f80 == 0x7f80 && firstBad < 0 {
				firstBad, w[i] = i, x
			}
			if d := abs32(x - o); d > maxDelta {
				maxDelta = d
			}
			b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		}
	}
	return maxDelta, firstBad
}

// finishBF16 is finish for BF16 on a little-endian machine, with
// safetensors.Float32ToBF16's rounding (to nearest, ties to even; NaN
// stays a quiet NaN) written inline.
func finishBF16(w []float32, h []uint16, addW0 bool) (maxDelta float32, firstBad int) {
	firstBad = -1
	var maxBits uint32 // |x − o| as bits: for non-negative floats, bit order is value order
	h = h[:len(w)]
	for i, x := range w {
		o := math.Float32frombits(uint32(h[i]) << 16)
		if addW0 {
			x += o
		}
		d := math.Float32bits(x-o) &^ (1 << 31)
		if d > 0x7f800000 {
			d = 0 // a NaN difference never counts, as with a float comparison
		}
		maxBits = max(maxBits, d)
		u := math.Float32bits(x)
		var e uint16
		if u&0x7fffffff > 0x7f800000 {
			e = uint16(u>>16) | 0x0040
		} else {
			e = uint16((u + 0x7fff + (u>>16)&1) >> 16)
		}
		if e&0x7f80 == 0x7f80 && firstBad < 0 {
			firstBad, w[i] = i, x
		}
		h[i] = e
	}
	return math.Float32frombits(maxBits), firstBad
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
