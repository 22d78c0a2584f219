package lowp

import (
	"fmt"
	"math"
	"os"
	"sync"
)

// Paths.
const (
	PathAVX512BF16 = "avx512bf16" // the assembly kernels
	PathGo         = "go"         // the portable Go kernels (same arithmetic)
)

var forced string

// LORAFLOW_LOWP forces a path at start-up (avx512bf16 or go), as Force does:
// for benchmarks and figures of the BF16 arithmetic on CPUs without it.
func init() {
	if v := os.Getenv("LORAFLOW_LOWP"); v != "" {
		if err := Force(v); err != nil {
			panic(fmt.Sprintf("LORAFLOW_LOWP=%s: %v", v, err))
		}
	}
}

// Accelerated reports whether this CPU runs the AVX512_BF16 kernels.
func Accelerated() bool { return hasBF16 }

// Enabled reports whether callers should send BF16 products here: on a CPU
// with AVX512_BF16, or with the Go path forced (tests).
func Enabled() bool { return forced == PathGo || (hasBF16 && forced == "") || forced == PathAVX512BF16 }

// Path names the kernels products run on now.
func Path() string {
	if forced != "" {
		return forced
	}
	if hasBF16 {
		return PathAVX512BF16
	}
	return PathGo
}

// Force selects the kernels for tests: PathAVX512BF16 (an error where the
// CPU lacks it), PathGo, or "" for the default. Not safe to call while
// products run.
func Force(path string) error {
	switch path {
	case "", PathGo:
	case PathAVX512BF16:
		if !hasBF16 {
			return fmt.Errorf("lowp: path %s: this CPU has no AVX512_BF16", path)
		}
	default:
		return fmt.Errorf("lowp: unknown path %q (want %s or %s)", path, PathAVX512BF16, PathGo)
	}
	forced = path
	return nil
}

func asm() bool { return Path() == PathAVX512BF16 }

// Parallel runs fn over [0, n) in chunks of at least grain items, possibly
// on several goroutines; nil runs serially.
type Parallel func(n, grain int, fn func(lo, hi int))

func run(par Parallel, n, grain int, fn func(lo, hi int)) {
	if par == nil {
		fn(0, n)
		return
	}
	par(n, grain, fn)
}

const (
	mr = 12 // rows of the micro-tile (broadcast operand)
	nr = 32 // columns (vector operand)
)

// ToBF16 rounds f to BF16 as VCVTNE2PS2BF16 does: to nearest, ties to
// even; a denormal reads as zero (of its sign); a NaN stays a quiet NaN.
func ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	switch {
	case b&0x7f800000 == 0:
		return uint16(b>>16) & 0x8000
	case b&0x7fffffff > 0x7f800000:
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

func bf(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// convertRow writes BF16(src) to dst.
func convertRow(dst []uint16, src []float32) {
	n := len(src)
	i := 0
	if asm() && n >= 32 {
		i = n &^ 31
		cvtBF16(&dst[0], &src[0], i)
	}
	for ; i < n; i++ {
		dst[i] = ToBF16(src[i])
	}
}

var (
	u16Pool sync.Pool
	u32Pool sync.Pool
)

func getU16(n int) []uint16 {
	if p, ok := u16Pool.Get().(*[]uint16); ok && cap(*p) >= n {
		b := (*p)[:n]
		clear(b)
		return b
	}
	return make([]uint16, n)
}

func putU16(b []uint16) { u16Pool.Put(&b) }

func getU32(n int) []uint32 {
	if p, ok := u32Pool.Get().(*[]uint32); ok && cap(*p) >= n {
		b := (*p)[:n]
		clear(b)
		return b
	}
	return make([]uint32, n)
}

func putU32(b []uint32) { u32Pool.Put(&b) }

func check(name string, m, n, k int, x []float32, ldx int, xCols int, w []uint16, ldw, wRows, wCols int, y []float32, ldy int) {
	if m < 0 || n < 0 || k < 0 || k%2 != 0 {
		panic(fmt.Sprintf("lowp: %s: bad shape m=%d n=%d k=%d (k must be even)", name, m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	if ldx < xCols || ldw < wCols || ldy < n {
		panic(fmt.Sprintf("lowp: %s: leading dimension too small", name))
	}
	if (xCols > 0 && len(x) < (m-1)*ldx+xCols) || (wRows > 0 && wCols > 0 && len(w) < (wRows-1)*ldw+wCols) || len(y) < (m-1)*ldy+n {
		panic(fmt.Sprintf("lowp: %s: slice too short", name))
	}
}

// epilogue writes C[r][c] = alpha·v + beta·C[r][c] (C not read when beta
// is 0).
func store(c []float32, idx int, alpha, v, beta float32) {
	if beta == 0 {
		c[idx] = alpha * v
	} else {
		c[idx] = alpha*v + beta*c[idx]
	}
}

// start checks a product's arguments and does the products with nothing
// to sum (k = 0: y = beta·y); it reports whether the kernels have work.
func start(name string, m, n, k int, x []float32, ldx, xCols int, w []uint16, ldw, wRows, wCols int, y []float32, ldy int, beta float32) bool {
	check(name, m, n, k, x, ldx, xCols, w, ldw, wRows, wCols, y, ldy)
	if m == 0 || n == 0 {
		return false
	}
	if k == 0 {
		scaleOnly(m, n, beta, y, ldy)
		return false
	}
	return true
}

// scaleOnly is the product with k = 0: y = beta·y.
func scaleOnly(m, n int, beta float32, y []float32, ldy int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			store(y, i*ldy+j, 0, 0, beta)
		}
	}
}

// MulNT computes y = alpha·x·Wᵀ + beta·y for x float32 [m, k] (row stride
// ldx), W BF16 bits [n, k] (ldw), y [m, n] (ldy); k must be even. x is
// rounded to BF16; the sums are float32.
func MulNT(m, n, k int, alpha float32, x []float32, ldx int, w []uint16, ldw int, beta float32, y []float32, ldy int, par Parallel) {
	if !start("MulNT", m, n, k, x, ldx, k, w, ldw, n, k, y, ldy, beta) {
		return
	}
	kp := k / 2
	panels := (m + nr - 1) / nr
	// x as pair words, [panel][p][32]
	xp := getU32(panels * kp * nr)
	defer putU32(xp)
	run(par, panels, 1, func(lo, hi int) {
		row := getU16(k)
		defer putU16(row)
		for pn := lo; pn < hi; pn++ {
			dst := xp[pn*kp*nr : (pn+1)*kp*nr]
			for t := 0; t < nr && pn*nr+t < m; t++ {
				r := pn*nr + t
				convertRow(row, x[r*ldx:r*ldx+k])
				for p := 0; p < kp; p++ {
					dst[p*nr+t] = uint32(row[2*p]) | uint32(row[2*p+1])<<16
				}
			}
		}
	})
	blocks := (n + mr - 1) / mr
	run(par, blocks, 4, func(lo, hi int) {
		var tile [mr * nr]float32
		var pad []uint16
		for b := lo; b < hi; b++ {
			o0 := b * mr
			rows := min(mr, n-o0)
			a, lda := w[o0*ldw:], ldw
			if rows < mr { // the last block: rows copied under zero rows
				pad = getU16(mr * k)
				for i := 0; i < rows; i++ {
					copy(pad[i*k:(i+1)*k], w[(o0+i)*ldw:(o0+i)*ldw+k])
				}
				a, lda = pad, k
			}
			for pn := 0; pn < panels; pn++ {
				dotPacked(kp, a, lda, xp[pn*kp*nr:(pn+1)*kp*nr], &tile)
				for t := 0; t < nr && pn*nr+t < m; t++ {
					r := pn*nr + t
					for i := 0; i < rows; i++ {
						store(y, r*ldy+o0+i, alpha, tile[i*nr+t], beta)
					}
				}
			}
			if pad != nil {
				putU16(pad)
				pad = nil
			}
		}
	})
}

// rowsOrder[s] is the column of lane s of the tile dotRows12x32 writes
// (VPUNPCKLWD/HWD interleave within 128-bit lanes).
var rowsOrder = func() (o [nr]int) {
	for s := range o {
		h, l := s/16, s%16
		o[s] = 8*(l/4) + 4*h + l%4
	}
	return o
}()

// MulNN computes y = alpha·x·W + beta·y for x float32 [m, k] (ldx), W BF16
// bits [k, n] (ldw), y [m, n] (ldy); k must be even. x is rounded to BF16;
// the sums are float32.
func MulNN(m, n, k int, alpha float32, x []float32, ldx int, w []uint16, ldw int, beta float32, y []float32, ldy int, par Parallel) {
	if !start("MulNN", m, n, k, x, ldx, k, w, ldw, k, n, y, ldy, beta) {
		return
	}
	kp := k / 2
	blocks := (m + mr - 1) / mr
	kk := k
	xb := getU16(blocks * mr * kk) // BF16 rows, zero rows below m
	defer putU16(xb)
	run(par, blocks, 1, func(lo, hi int) {
		for r := lo * mr; r < min(m, hi*mr); r++ {
			convertRow(xb[r*kk:r*kk+k], x[r*ldx:r*ldx+k])
		}
	})
	panels := (n + nr - 1) / nr
	run(par, panels, 1, func(lo, hi int) {
		var tile [mr * nr]float32
		for pn := lo; pn < hi; pn++ {
			j0 := pn * nr
			cols := min(nr, n-j0)
			b, ldb := w[j0:], ldw
			var pad []uint16
			if cols < nr { // the last panel: columns copied beside zeros
				pad = getU16(k * nr)
				for r := 0; r < k; r++ {
					copy(pad[r*nr:r*nr+cols], w[r*ldw+j0:r*ldw+j0+cols])
				}
				b, ldb = pad, nr
			}
			for bl := 0; bl < blocks; bl++ {
				i0 := bl * mr
				dotRows(kp, xb[i0*kk:], kk, b, ldb, &tile)
				for i := 0; i < mr && i0+i < m; i++ {
					for s, c := range rowsOrder {
						if c < cols {
							store(y, (i0+i)*ldy+j0+c, alpha, tile[i*nr+s], beta)
						}
					}
				}
			}
			if pad != nil {
				putU16(pad)
			}
		}
	})
}

// dotPacked: tile[i][j] = Σ_p A_i·B_j over BF16 pairs; A row i at a[i·lda:].
func dotPacked(kp int, a []uint16, lda int, b []uint32, tile *[mr * nr]float32) {
	if asm() {
		if kp == 0 {
			clear(tile[:])
			return
		}
		_ = a[(mr-1)*lda+2*kp-1]
		_ = b[kp*nr-1]
		dotPacked12x32(kp, &a[0], 2*lda, &b[0], &tile[0])
		return
	}
	for i := 0; i < mr; i++ {
		ar := a[i*lda:]
		for j := 0; j < nr; j++ {
			var acc float32
			for p := 0; p < kp; p++ {
				bw := b[p*nr+j]
				acc = dp(acc, ar[2*p], ar[2*p+1], uint16(bw), uint16(bw>>16))
			}
			tile[i*nr+j] = acc
		}
	}
}

// dotRows: as dotPacked with B read from BF16 rows (ldb apart), lanes in
// rowsOrder.
func dotRows(kp int, a []uint16, lda int, b []uint16, ldb int, tile *[mr * nr]float32) {
	if asm() {
		if kp == 0 {
			clear(tile[:])
			return
		}
		_ = a[(mr-1)*lda+2*kp-1]
		_ = b[(2*kp-1)*ldb+nr-1]
		dotRows12x32(kp, &a[0], 2*lda, &b[0], 2*ldb, &tile[0])
		return
	}
	for i := 0; i < mr; i++ {
		ar := a[i*lda:]
		for s, c := range rowsOrder {
			var acc float32
			for p := 0; p < kp; p++ {
				acc = dp(acc, ar[2*p], ar[2*p+1], b[2*p*ldb+c], b[(2*p+1)*ldb+c])
			}
			tile[i*nr+s] = acc
		}
	}
}

// dp is one lane of VDPBF16PS as Intel's SDM writes it: the odd pair's
// product added first, then the even one's, each sum rounded to float32
// (the products of two BF16 values are exact in float32).
func dp(acc float32, a0, a1, b0, b1 uint16) float32 {
	acc += bf(a1) * bf(b1)
	acc += bf(a0) * bf(b0)
	return acc
}
