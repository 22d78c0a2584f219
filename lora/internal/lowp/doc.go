// Package lowp multiplies float32 activations by frozen BF16 weights on the
// AVX512_BF16 instructions: VDPBF16PS (pairs of BF16 products summed into
// float32 lanes, 64 FLOPs an instruction) and VCVTNE2PS2BF16 (the
// activations rounded to BF16, nearest even).
//
// It serves the two products of a LoRA step whose one operand is a frozen
// weight W [n, k] stored BF16 row-major: the forward product y = x·Wᵀ
// (MulNT) and the input gradient dx = g·W (MulNN). The LoRA products and
// the weight gradients stay in float32 elsewhere.
//
// # Kernels
//
// Both run one micro-kernel shape, a 12×32 float32 tile in 24 zmm
// accumulators; each step of the reduction consumes one BF16 pair (two
// values of k):
//
//   - MulNT broadcasts pairs of 12 weight rows, read in place (a row's
//     pairs are contiguous), against 32 activation rows packed as pair words
//     [k/2][32]; the tile is yᵀ.
//   - MulNN broadcasts pairs of 12 activation rows, converted to BF16 rows,
//     against 32 weight columns read in place: rows 2p and 2p+1 of W are
//     interleaved in registers (VPUNPCKLWD/VPUNPCKHWD), so W is never
//     packed either.
//
// The reduction runs over all of k in order, so every element of the result
// is the same whatever the tiling or the number of goroutines. Intel's and
// AMD's VDPBF16PS may round the two partial products differently, so the
// results are checked against a float64 reference with a tolerance, not
// bit for bit; a run is bit-identical to another on the same machine.
//
// The kernels are Go assembly; the two BF16 instructions are encoded as
// bytes by gen_kernel.go, as Go's assembler lacks them. The portable Go
// path ("go") does the same arithmetic in the same order, for tests and for
// checking the packing on CPUs without AVX512_BF16; the engine itself
// uses these products only where the CPU has them (Enabled).
package lowp
