package lora

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/loraflow/loraflow/lora/quant"
	"github.com/loraflow/loraflow/lora/safetensors"
)

// Frozen weights in their checkpoint precision.
//
// A frozen 2-D weight (a linear layer's, or the embeddings) can be held in
// fewer bits than float32: param.lp is then its storage and param.w is nil.
// Only the two base products read it — mulW (x·Wᵀ, or x·W for Conv1D) and
// inputGrad (g·W) — plus the embedding lookup; each decodes the weight tile
// by tile into a small float32 buffer inside the product (lowMul), so no
// full-precision copy of the weight is ever made. A weight that becomes
// trainable (full fine-tuning, modules_to_save, PiSSA/OLoRA residuals, DoRA)
// is widened to float32 first (widen). LoRA factors, gradients and the
// optimizer's moments are always float32 (float64 in the gradient checks).

// Precision names the arithmetic of the products against frozen weights.
const (
	// PrecisionFP32 multiplies in float32: 16-bit checkpoint weights stay 16
	// bits in memory and are converted exactly while the product runs, so the
	// results are those of a widened float32 weight.
	PrecisionFP32 = "fp32"
	// PrecisionBF16 holds every frozen weight in BF16 (F32 and F16 weights
	// rounded to nearest even at load) and multiplies on the BF16 kernel
	// (internal/lowp: BF16 products, FP32 sums) where the CPU has one.
	PrecisionBF16 = "bf16"
)

// LoadOptions says how LoadModelWith keeps the frozen weights.
type LoadOptions struct {
	// Precision is PrecisionFP32 (the default when empty) or PrecisionBF16.
	Precision string
	// Quantization, when not nil, quantizes the linear weights of the
	// transformer blocks at load (QLoRA); the embeddings and the output head
	// stay as Precision keeps them, as bitsandbytes leaves them unquantized.
	Quantization *quant.Config
}

func (o LoadOptions) check() error {
	switch o.Precision {
	case "", PrecisionFP32, PrecisionBF16:
	default:
		return inputErr(KindBadConfig, "precision %q is not %s or %s", o.Precision, PrecisionFP32, PrecisionBF16)
	}
	if o.Quantization != nil {
		if err := o.Quantization.Validate(); err != nil {
			return &InputError{Kind: KindBadConfig, Msg: "quantization", Err: err}
		}
	}
	return nil
}

// quantName names the quantization type ("" for none).
func (o LoadOptions) quantName() string {
	if o.Quantization == nil {
		return ""
	}
	return string(o.Quantization.Type)
}

// weightScale is the fraction of their float32 size the weights take at
// most as o holds them, for the memory limit checked before loading: BF16
// halves them; quantization leaves the embeddings and head as the
// precision keeps them and the blocks at about 0.14 (4.1 bits). An fp32 load may keep a
// 16-bit checkpoint at 2 bytes but is counted at 4 (its dtype is not known
// yet).
func (o LoadOptions) weightScale() float64 {
	switch {
	case o.Quantization != nil && o.Precision == PrecisionBF16:
		return 0.35 // embeddings at 0.5 (under half the parameters), blocks at ~0.14
	case o.Quantization != nil || o.Precision == PrecisionBF16:
		return 0.5
	}
	return 1
}

// quantizes reports whether o quantizes the tensor: a linear weight of a
// transformer block (not the embeddings nor the head).
func (o LoadOptions) quantizes(name string, shape []int) bool {
	return o.Quantization != nil && keepsLow(name, shape) &&
		!strings.Contains(name, "embed") && !strings.Contains(name, "wte.") && !strings.Contains(name, "lm_head")
}

// quantWeight is a block-quantized weight (NF4, FP4, INT8).
type quantWeight struct {
	q    *quant.Tensor
	cols int
}

func (w *quantWeight) dtype() string      { return strings.ToUpper(string(w.q.Type)) }
func (w *quantWeight) residentBytes() int { return w.q.Bytes() }
func (w *quantWeight) decode(r0, r1, c0, c1 int, dst []float32) {
	if c0 == 0 && c1 == w.cols { // whole rows: one contiguous range
		w.q.Dequantize(r0*w.cols, r1*w.cols, dst)
		return
	}
	cw := c1 - c0
	for r := r0; r < r1; r++ {
		w.q.Dequantize(r*w.cols+c0, r*w.cols+c1, dst[(r-r0)*cw:(r-r0+1)*cw])
	}
}

// lowFromValues keeps float32 values v of a frozen tensor as o says:
// quantized, rounded to BF16, or (ok false) as they are.
func (o LoadOptions) lowFromValues(name string, shape []int, v []float32) (lowWeight, bool, error) {
	switch {
	case o.quantizes(name, shape):
		q, err := quant.Quantize(v, *o.Quantization)
		if err != nil {
			return nil, false, &InputError{Kind: KindCorruptCheckpoint, Msg: fmt.Sprintf("quantize tensor %q", name), Err: err}
		}
		return &quantWeight{q: q, cols: shape[1]}, true, nil
	case o.Precision == PrecisionBF16 && keepsLow(name, shape):
		return newBF16Weight(v, shape[1]), true, nil
	}
	return nil, false, nil
}

// transients tracks the float32 tensors a loader reads only to convert
// them: before the next large one is read, the garbage collector runs, so
// that loading tensor by tensor peaks at the storage plus one float32
// tensor, not at the collector's default of twice the live heap. The
// weights hold no pointers, so a collection costs little.
type transients struct{ pending bool }

// next is called before a float32 tensor of n values is read for
// conversion.
func (t *transients) next(n int) {
	if t.pending {
		runtime.GC()
	}
	t.pending = n >= 1<<22 // 16 MiB
}

// lowWeight is the storage of a frozen weight [rows, cols] held in fewer
// bits than float32.
type lowWeight interface {
	// dtype names the storage: "BF16", "F16", "NF4", "FP4" or "INT8".
	dtype() string
	// decode writes rows r0..r1, columns c0..c1 of the weight as float32 to
	// dst, row-major ((r1−r0)×(c1−c0)).
	decode(r0, r1, c0, c1 int, dst []float32)
	// residentBytes is the memory the storage holds.
	residentBytes() int
}

// halfWeight is a BF16 or F16 weight, its raw bits row-major.
type halfWeight struct {
	bits []uint16
	cols int
	bf16 bool
	// native: products may run on the BF16 kernel (PrecisionBF16).
	native bool
}

func (h *halfWeight) dtype() string {
	if h.bf16 {
		return "BF16"
	}
	return "F16"
}

func (h *halfWeight) residentBytes() int { return 2 * len(h.bits) }

func (h *halfWeight) decode(r0, r1, c0, c1 int, dst []float32) {
	w := c1 - c0
	for r := r0; r < r1; r++ {
		src := h.bits[r*h.cols+c0 : r*h.cols+c1]
		out := dst[(r-r0)*w : (r-r0+1)*w]
		if h.bf16 {
			bf16ToFloat32(src, out)
		} else {
			for j, b := range src {
				out[j] = safetensors.F16ToFloat32(b)
			}
		}
	}
}

// bf16ToFloat32 widens BF16 bits exactly (the top half of a float32).
func bf16ToFloat32(src []uint16, dst []float32) {
	dst = dst[:len(src)]
	for j, b := range src {
		dst[j] = safetensors.BF16ToFloat32(b)
	}
}

// values returns the weight as float32 values: p.w itself, or a new slice
// decoded from its low-precision storage.
func (p *param[T]) values() []T {
	if p.lp == nil {
		return p.w
	}
	v := make([]float32, p.size())
	p.lp.decode(0, p.shape[0], 0, p.shape[1], v)
	if vt, ok := any(v).([]T); ok {
		return vt
	}
	return fromFloat32[T](v)
}

// widen replaces a low-precision storage by float32 values (a weight about
// to be trained or rewritten); the storage itself, which a cloned network
// may share, is left as it was.
func (p *param[T]) widen() {
	if p.lp == nil {
		return
	}
	p.w = p.values()
	p.lp = nil
}

// ownCopy gives p values of its own (a trainable copy of a shared weight).
func (p *param[T]) ownCopy() {
	if p.lp != nil {
		p.widen()
		return
	}
	p.w = append([]T(nil), p.w...)
}

// row writes row i of the 2-D weight p to dst (the embedding lookup).
func (p *param[T]) row(i int, dst []T) {
	cols := p.shape[1]
	if p.lp == nil {
		copy(dst, p.w[i*cols:(i+1)*cols])
		return
	}
	if d, ok := any(dst).([]float32); ok {
		p.lp.decode(i, i+1, 0, cols, d)
		return
	}
	tmp := make([]float32, cols)
	p.lp.decode(i, i+1, 0, cols, tmp)
	for j, v := range tmp {
		dst[j] = T(v)
	}
}

// widenAll widens every low-precision weight of n (full fine-tuning
// updates the model's own weights in place).
func (n *net[T]) widenAll() {
	for _, p := range n.params {
		p.widen()
	}
	if n.head != nil && n.head.w != nil {
		n.head.w.widen()
	}
}

// WeightBytes is the memory the model's weights hold: 4 bytes a value for
// float32 weights, the storage's size for weights kept in fewer bits.
func (m *Model) WeightBytes() int {
	b := 0
	for _, p := range m.net.params {
		if p.lp != nil {
			b += p.lp.residentBytes()
		} else {
			b += 4 * len(p.w)
		}
	}
	return b
}

// WeightDTypes counts the model's weights by storage ("F32", "BF16", ...).
func (m *Model) WeightDTypes() map[string]int {
	out := map[string]int{}
	for _, p := range m.net.params {
		if p.lp != nil {
			out[p.lp.dtype()]++
		} else {
			out["F32"]++
		}
	}
	return out
}

// NewModelWith is NewModel with the frozen weights kept as o says, each
// tensor made in float32 and converted at once (so a model too large for
// float32 can be made quantized or in BF16: the benchmarks' real-scale
// shapes). The values are those of NewModel, rounded or quantized.
func NewModelWith(cfg ModelConfig, seed int64, o LoadOptions) (*Model, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkModelFits(cfg, o.weightScale()); err != nil {
		return nil, err
	}
	src := randomSource(cfg, seed)
	var tr transients
	low := func(name string, shape []int) (lowWeight, bool, error) {
		if !o.quantizes(name, shape) && !(o.Precision == PrecisionBF16 && keepsLow(name, shape)) {
			return nil, false, nil
		}
		tr.next(shape[0] * shape[1])
		v, err := src(name, shape)
		if err != nil {
			return nil, false, err
		}
		return o.lowFromValues(name, shape, v)
	}
	n, err := buildNet[float32](cfg, src, low)
	if err != nil {
		return nil, err
	}
	return &Model{cfg: cfg, net: n}, nil
}

// keepsLow reports whether the tensor name of this shape may be held in
// low precision: a 2-D linear or embedding weight (not the position
// embeddings, which are added element-wise).
func keepsLow(name string, shape []int) bool {
	if len(shape) != 2 || !strings.HasSuffix(name, ".weight") {
		return false
	}
	return !strings.Contains(name, "wpe.") && !strings.Contains(name, "norm") && !strings.Contains(name, "ln_")
}

// lowSource gives the storage of a frozen tensor kept in low precision, or
// ok false for a tensor that is loaded as float32.
type lowSource func(name string, shape []int) (w lowWeight, ok bool, err error)

// halfReader is what a checkpoint offers to keep 16-bit tensors as they are.
type halfReader interface {
	Uint16(name string) ([]uint16, error)
	Release(name string)
}

// checkpointLow keeps the checkpoint's 2-D BF16/F16 weights in 16 bits
// (one 16-bit copy each, the file's pages released as it goes) and, with
// PrecisionBF16, rounds F32 ones to BF16. resolve maps a model tensor name
// to the checkpoint's (shape already checked by the caller's src).
func checkpointLow(r tensorReader, o LoadOptions, resolve func(string) (string, bool), dir string) lowSource {
	hr, _ := r.(halfReader)
	bf := o.Precision == PrecisionBF16
	var tr transients
	return func(name string, shape []int) (lowWeight, bool, error) {
		if !keepsLow(name, shape) {
			return nil, false, nil
		}
		actual, ok := resolve(name)
		if !ok {
			return nil, false, nil // src reports the missing tensor
		}
		info, _ := r.Info(actual)
		if !equalShape(info.Shape, shape) {
			return nil, false, nil // src reports the shape
		}
		fail := func(err error) (lowWeight, bool, error) {
			return nil, false, &InputError{Kind: KindCorruptCheckpoint, Msg: fmt.Sprintf("%s: tensor %q", dir, actual), Err: err}
		}
		// readFloat32 reads the tensor widened to float32 (the tracker
		// collecting the previous one first) and releases the file's pages.
		readFloat32 := func() ([]float32, error) {
			tr.next(info.NumElements())
			v, err := r.Float32(actual)
			if err == nil && hr != nil {
				hr.Release(actual)
			}
			return v, err
		}
		switch {
		case o.quantizes(name, shape) && info.DType.IsFloat():
			v, err := readFloat32()
			if err != nil {
				return fail(err)
			}
			return o.lowFromValues(name, shape, v)
		case hr != nil && (info.DType == safetensors.BF16 || (info.DType == safetensors.F16 && !bf)):
			bits, err := hr.Uint16(actual)
			if err != nil {
				return fail(err)
			}
			hr.Release(actual)
			return &halfWeight{bits: bits, cols: shape[1], bf16: info.DType == safetensors.BF16, native: bf}, true, nil
		case bf && info.DType.IsFloat():
			v, err := readFloat32()
			if err != nil {
				return fail(err)
			}
			return newBF16Weight(v, shape[1]), true, nil
		}
		return nil, false, nil
	}
}

// newBF16Weight rounds float32 values to BF16 (nearest, ties to even).
func newBF16Weight(v []float32, cols int) *halfWeight {
	bits := make([]uint16, len(v))
	for i, x := range v {
		bits[i] = safetensors.Float32ToBF16(x)
	}
	return &halfWeight{bits: bits, cols: cols, bf16: true, native: true}
}

// lowTileElems is the size of the float32 tile a product decodes at a time
// (4 MiB): large enough that the float32 kernel's packing of the other
// operand, repeated once per tile, stays a small part of the work even for
// the output head's 128k rows.
var lowTileElems = 1 << 20 // a variable for the tiling tests

// lowMul computes y = x·Wᵀ (nt) or y = x·W (+ beta·y) for the frozen weight
// p stored [R, C] in low precision: x is [n, C] (nt) or [n, R], y [n, R] or
// [n, C]. The weight is decoded tile by tile into a float32 buffer and each
// tile multiplied as soon as it is decoded, so no full-precision copy of
// the weight exists:
//   - x·Wᵀ: tiles of whole rows of W (columns of y), spread over the
//     goroutines; every element of y is one product over the whole of K;
//   - x·W: tiles of whole rows of W (a block of K), one after another, each
//     added into y by the (parallel) float32 product; the blocks have fixed
//     boundaries, so the result does not depend on the thread count.
func lowMul[T float](p *param[T], nt bool, n int, x []T, ldx int, beta T, y []T, ldy int) {
	R, C := p.shape[0], p.shape[1]
	if n == 0 {
		return
	}
	if h, ok := p.lp.(*halfWeight); ok && h.bf16 && h.native {
		if x32, ok := any(x).([]float32); ok && bf16Kernel(nt, n, R, C, h.bits, x32, ldx, float32(beta), any(y).([]float32), ldy) {
			return
		}
	}
	rows := min(R, max(16, lowTileElems/C/16*16)) // rows of W a tile
	tiles := (R + rows - 1) / rows
	pool32, pool := scratchPool[float32](), scratchPool[T]()
	// decode writes rows r0..r1 of W as T into a pooled buffer, decoding in
	// parallel chunks of rows.
	decode := func(r0, r1 int, par bool) []T {
		d := pool32.get((r1 - r0) * C)
		if par {
			parallelFor(r1-r0, max(1, 4096/C), func(lo, hi int) {
				p.lp.decode(r0+lo, r0+hi, 0, C, d[lo*C:hi*C])
			})
		} else {
			p.lp.decode(r0, r1, 0, C, d)
		}
		if wt, ok := any(d).([]T); ok {
			return wt
		}
		wt := pool.get(len(d))
		for i, v := range d {
			wt[i] = T(v)
		}
		pool32.put(d)
		return wt
	}
	release := func(wt []T) {
		if d, ok := any(wt).([]float32); ok {
			pool32.put(d)
		} else {
			pool.put(wt)
		}
	}
	if nt {
		concurrentGEMMs(func() {
			parallelFor(tiles, 1, func(lo, hi int) {
				for t := lo; t < hi; t++ {
					o0 := t * rows
					o1 := min(R, o0+rows)
					wt := decode(o0, o1, false)
					// y[:, o0:o1] = x·W[o0:o1, :]ᵀ
					gemm1(false, true, n, o1-o0, C, 1, x, ldx, wt, C, beta, y[o0:], ldy)
					release(wt)
				}
			})
		})
		return
	}
	for t := 0; t < tiles; t++ {
		k0 := t * rows
		k1 := min(R, k0+rows)
		wt := decode(k0, k1, true)
		b := beta
		if t > 0 {
			b = 1
		}
		// y (+)= x[:, k0:k1]·W[k0:k1, :]
		gemm(false, false, n, C, k1-k0, 1, x[k0:], ldx, wt, C, b, y, ldy)
		release(wt)
	}
}
