package quant

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
)

// Type is a quantization data type.
type Type string

// The data types.
const (
	NF4  Type = "nf4"
	FP4  Type = "fp4"
	INT8 Type = "int8"
)

// Config says how weights are quantized: the spec's quantization section.
type Config struct {
	Type        Type `json:"type"`
	BlockSize   int  `json:"block_size"`
	DoubleQuant bool `json:"double_quant"`
}

// DoubleQuantBlock is the block size of the absmax constants' own
// quantization (bitsandbytes' compress_statistics).
const DoubleQuantBlock = 256

// Validate checks the type and the block size (bitsandbytes accepts the
// powers of two from 32 to 4096).
func (c Config) Validate() error {
	switch c.Type {
	case NF4, FP4, INT8:
	default:
		return fmt.Errorf("quant: type %q is not nf4, fp4 or int8", c.Type)
	}
	switch c.BlockSize {
	case 32, 64, 128, 256, 512, 1024, 2048, 4096:
	default:
		return fmt.Errorf("quant: block_size %d is not a power of two from 32 to 4096", c.BlockSize)
	}
	return nil
}

// Bits is the width of one code.
func (t Type) Bits() int {
	if t == INT8 {
		return 8
	}
	return 4
}

// NF4Code is QLoRA's NormalFloat4 code book, as bitsandbytes' get_4bit_type
// ("nf4") lists it (create_normal_map(offset=0.9677083, use_extra_value=True)).
var NF4Code = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// FP4Code is bitsandbytes' FP4 code book in bit-pattern order (index bit 3
// the sign): get_4bit_type("fp4")'s values divided by their maximum, 12.
var FP4Code = func() (c [16]float32) {
	raw := [16]float32{0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3}
	for i, v := range raw {
		c[i] = v / 12
	}
	return c
}()

// DynamicCode is bitsandbytes' signed 8-bit dynamic code
// (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)),
// sorted: the code of the absmax constants under double quantization. For
// exponent i = 0..6 it holds ±10^(i−6) times the midpoints of 2^i + 1
// points evenly spaced over [0.1, 1], then 0 and 1. bitsandbytes builds the
// points with torch.linspace in float32, whose rounding varies with the
// vector width of the CPU it runs on; here each entry is computed in
// float64 and rounded once, so it is within an ulp or two of any of those.
var DynamicCode = func() [256]float32 {
	const maxExp = 7
	var data []float32
	for i := 0; i < maxExp; i++ {
		n := 1 << i // midpoints
		scale := math.Pow(10, float64(i-(maxExp-1)))
		for j := 0; j < n; j++ {
			mid := 0.1 + 0.9*(float64(j)+0.5)/float64(n)
			data = append(data, float32(scale*mid), float32(-scale*mid))
		}
	}
	data = append(data, 0, 1)
	sort.Slice(data, func(i, j int) bool { return data[i] < data[j] })
	var c [256]float32
	copy(c[:], data)
	return c
}()

// Tensor is a quantized tensor of N values.
type Tensor struct {
	Config
	N int
	// Data holds the codes: two 4-bit codes a byte (element 2i in the high
	// nibble) or one 8-bit code a byte (INT8, two's complement).
	Data []byte
	// Absmax is each block's absolute maximum (without DoubleQuant).
	Absmax []float32
	// With DoubleQuant: QAbsmax is each block's absmax − Offset in
	// DynamicCode, scaled per group of DoubleQuantBlock blocks by Absmax2.
	QAbsmax []uint8
	Absmax2 []float32
	Offset  float32
}

// Bytes is the memory the tensor holds.
func (t *Tensor) Bytes() int {
	return len(t.Data) + 4*len(t.Absmax) + len(t.QAbsmax) + 4*len(t.Absmax2) + 4
}

// code returns the 16-entry book of a 4-bit type.
func (t Type) code() *[16]float32 {
	if t == FP4 {
		return &FP4Code
	}
	return &NF4Code
}

// nearest returns, for a sorted code book, the function from a scaled value
// to the index of its nearest entry, as torch.bucketize on the midpoints
// (right=False: a value on a midpoint goes to the lower entry) does; order
// maps a sorted position back to the code's own index.
func nearest(code []float32) func(x float32) int {
	n := len(code)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return code[order[a]] < code[order[b]] })
	mid := make([]float32, n-1)
	for i := range mid {
		mid[i] = (code[order[i]] + code[order[i+1]]) / 2
	}
	return func(x float32) int {
		// the number of midpoints below x (boundaries[i−1] < x ≤ boundaries[i])
		return order[sort.Search(len(mid), func(i int) bool { return mid[i] >= x })]
	}
}

var (
	nearestNF4     = nearest(NF4Code[:])
	nearestFP4     = nearest(FP4Code[:])
	nearestDynamic = nearest(DynamicCode[:])
)

// blockwise quantizes v in blocks of bs to the code indices q (one per
// value) and the blocks' absmax, as bitsandbytes' quantize_4bit /
// quantize_blockwise: absmax clamped to at least 1e-38; a full block scaled
// by its reciprocal, the last short one divided; clamped to [−1, 1].
func blockwise(v []float32, bs int, index func(float32) int, q func(i, idx int)) []float32 {
	blocks := (len(v) + bs - 1) / bs
	absmax := make([]float32, blocks)
	parallel(blocks, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			blk := v[b*bs : min(len(v), (b+1)*bs)]
			var m float32
			for _, x := range blk {
				m = max(m, float32(math.Abs(float64(x))))
			}
			absmax[b] = m
			m = max(m, 1e-38)
			inv := 1 / m
			full := len(blk) == bs
			for j, x := range blk {
				var s float32
				if full {
					s = x * inv
				} else {
					s = x / m
				}
				s = min(max(s, -1), 1)
				q(b*bs+j, index(s))
			}
		}
	})
	return absmax
}

// Quantize quantizes v (row-major, any shape) with c.
func Quantize(v []float32, c Config) (*Tensor, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("quant: value %d is %v: only finite weights can be quantized", i, x)
		}
	}
	t := &Tensor{Config: c, N: len(v)}
	var absmax []float32
	switch c.Type {
	case INT8:
		t.Data = make([]byte, len(v))
		absmax = blockwise(v, c.BlockSize, func(s float32) int {
			return int(int8(math.RoundToEven(float64(s * 127))))
		}, func(i, idx int) { t.Data[i] = byte(int8(idx)) })
	default:
		t.Data = make([]byte, (len(v)+1)/2)
		index := nearestNF4
		if c.Type == FP4 {
			index = nearestFP4
		}
		// Two blocks never share a byte (block sizes are even), so blocks
		// can be written in parallel.
		absmax = blockwise(v, c.BlockSize, index, func(i, idx int) {
			if i%2 == 0 {
				t.Data[i/2] |= byte(idx) << 4
			} else {
				t.Data[i/2] |= byte(idx)
			}
		})
		if len(v)%2 == 1 {
			// the pad value 0 of an odd count: nearest to 0 (NF4 index 7)
			t.Data[len(v)/2] |= byte(index(0))
		}
	}
	if !c.DoubleQuant {
		t.Absmax = absmax
		return t, nil
	}
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	t.Offset = float32(sum / float64(len(absmax)))
	centred := make([]float32, len(absmax))
	for i, a := range absmax {
		centred[i] = a - t.Offset
	}
	t.QAbsmax = make([]uint8, len(absmax))
	t.Absmax2 = blockwise(centred, DoubleQuantBlock, nearestDynamic, func(i, idx int) { t.QAbsmax[i] = uint8(idx) })
	return t, nil
}

// BlockAbsmax returns the absmax the dequantization of block b uses: the
// stored one, or with double quantization code[q]·absmax2 + offset.
func (t *Tensor) BlockAbsmax(b int) float32 {
	if t.QAbsmax == nil {
		return t.Absmax[b]
	}
	return DynamicCode[t.QAbsmax[b]]*t.Absmax2[b/DoubleQuantBlock] + t.Offset
}

// Dequantize writes elements lo..hi of the tensor to dst[:hi−lo]:
// code[q]·absmax in float32, as bitsandbytes' dequantize_4bit.
func (t *Tensor) Dequantize(lo, hi int, dst []float32) {
	dst = dst[:hi-lo]
	bs := t.BlockSize
	for i := lo; i < hi; {
		b := i / bs
		end := min(hi, (b+1)*bs)
		am := t.BlockAbsmax(b)
		out := dst[i-lo : end-lo]
		switch t.Type {
		case INT8:
			for j, c := range t.Data[i:end] {
				out[j] = float32(int8(c)) / 127 * am
			}
		default:
			lut := pairLUT(t.Type)
			data := t.Data

			j := 0
			k := i
			if k%2 == 1 { // a low nibble first
				out[0] = lut[data[k/2]][1] * am
				j, k = 1, k+1
			}
			pairs := (end - k) / 2
			decode4(out[j:j+2*pairs], data[k/2:k/2+pairs], t.Type.code(), am)
			j, k = j+2*pairs, k+2*pairs
			if k < end { // a high nibble last
				out[j] = lut[data[k/2]][0] * am
			}
		}
		i = end
	}
}

// The two values each byte of 4-bit codes decodes to (high nibble first).
var nf4Pairs, fp4Pairs = makePairs(&NF4Code), makePairs(&FP4Code)

func makePairs(code *[16]float32) *[256][2]float32 {
	var l [256][2]float32
	for b := range l {
		l[b] = [2]float32{code[b>>4], code[b&0xf]}
	}
	return &l
}

func pairLUT(t Type) *[256][2]float32 {
	if t == FP4 {
		return fp4Pairs
	}
	return nf4Pairs
}

// useAsm is false in tests of the portable decoder.
var useAsm = true

// decode4Go decodes whole bytes: len(dst) = 2·len(src).
func decode4Go(dst []float32, src []byte, code *[16]float32, am float32) {
	lut := nf4Pairs
	if code == &FP4Code {
		lut = fp4Pairs
	}
	dst = dst[:2*len(src)]
	for p, by := range src {
		v := &lut[by]
		dst[2*p] = v[0] * am
		dst[2*p+1] = v[1] * am
	}
}

// parallel runs fn over [0, n) in a few chunks on goroutines.
func parallel(n int, fn func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), max(1, n/64))
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + w - 1) / w
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo int) { defer wg.Done(); fn(lo, min(n, lo+chunk)) }(lo)
	}
	wg.Wait()
}
