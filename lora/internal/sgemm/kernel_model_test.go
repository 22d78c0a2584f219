package sgemm

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// modelKernel12x32 is kernel12x32 written in Go from its documented
// contract (kernel_amd64.go): the same pointers, byte strides and update
// modes, one FMA per product in the order p = 0, 1, ... It stands in for
// the assembly on CPUs without AVX-512 (forEachKernel), and
// TestKernel12x32MatchesModel checks the assembly against it where the CPU
// has AVX-512.
func modelKernel12x32(kc int, a0, a1 *float32, aRow, aStep int, b0, b1 *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int) {
	at := func(r, p int) float32 {
		base := a0
		if r >= tileM {
			base, r = a1, r-tileM
		}
		return *(*float32)(unsafe.Add(unsafe.Pointer(base), r*aRow+p*aStep))
	}
	bt := func(p, q int) float32 {
		base := b0
		if q >= tileN {
			base, q = b1, q-tileN
		}
		return *(*float32)(unsafe.Add(unsafe.Pointer(base), p*bStep+4*q))
	}
	for r := range tileM512 {
		for q := range tileN512 {
			var acc float32
			for p := range kc {
				acc = float32(math.FMA(float64(at(r, p)), float64(bt(p, q)), float64(acc)))
			}
			dst := (*float32)(unsafe.Add(unsafe.Pointer(c), 4*(r*ldc+q)))
			switch mode {
			case storeC:
				*dst = alpha * acc
			case addC:
				*dst = float32(math.FMA(float64(acc), float64(alpha), float64(*dst)))
			default:
				*dst = float32(math.FMA(float64(alpha), float64(acc), float64(beta**dst)))
			}
		}
	}
}

// TestKernel12x32MatchesModel runs the AVX-512 kernel and its Go model on
// packed strips and on operands read in place (row-major and transposed A,
// untransposed B), over depths around the ×4 unrolling, in all three
// update modes, and compares every element of the tile and the C around it.
func TestKernel12x32MatchesModel(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512F on this CPU (or OS): kernel12x32 cannot run here")
	}
	rng := rand.New(rand.NewPCG(12, 32))
	for _, kc := range []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 192} {
		for layout := range 3 {
			for mode := range 3 {
				lda, ldb, ldc := kc+3, 40, 37
				a := make([]float32, (kc+tileM512)*(lda+tileM512)+64)
				b := make([]float32, kc*ldb+2*tileN*kc+64)
				for i := range a {
					a[i] = 2*rng.Float32() - 1
				}
				for i := range b {
					b[i] = 2*rng.Float32() - 1
				}
				var a0, a1, b0, b1 *float32
				var aRow, aStep, bStep int
				switch layout {
				case 0: // packed strips
					a0, a1, aRow, aStep = &a[0], &a[tileM*kc], 4, 4*tileM
					b0, b1, bStep = &b[0], &b[tileN*kc], 4*tileN
				case 1: // row-major A, untransposed B in place
					a0, a1, aRow, aStep = &a[1], &a[1+tileM*lda], 4*lda, 4
					b0, b1, bStep = &b[2], &b[2+tileN], 4*ldb
				default: // transposed A (k×m, stride lda ≥ 12) in place
					a0, a1, aRow, aStep = &a[0], &a[tileM], 4, 4*lda
					if lda < tileM512 {
						aStep = 4 * tileM512
					}
					b0, b1, bStep = &b[0], &b[tileN*kc], 4*tileN
				}
				c := make([]float32, (tileM512+1)*ldc)
				for i := range c {
					c[i] = 2*rng.Float32() - 1
				}
				want := append([]float32(nil), c...)
				alpha, beta := float32(-0.75), float32(1.5)
				if mode == addC {
					beta = 1
				}
				modelKernel12x32(kc, a0, a1, aRow, aStep, b0, b1, bStep, &want[ldc+1], ldc, alpha, beta, mode)
				kernel12x32(kc, a0, a1, aRow, aStep, b0, b1, bStep, &c[ldc+1], ldc, alpha, beta, mode)
				for i := range c {
					if d := math.Abs(float64(c[i] - want[i])); d > 1e-5*float64(kc+1) {
						t.Fatalf("kc=%d layout=%d mode=%d: C[%d][%d] = %v, model %v", kc, layout, mode, i/ldc, i%ldc, c[i], want[i])
					}
				}
			}
		}
	}
}
