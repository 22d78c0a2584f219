package sgemm

import (
	"sync"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's pure-Go blas.Float32 implementation with Sgemm
// replaced by this package's blocked AVX-512 or AVX2/FMA kernel.
type Implementation struct{ gonum.Implementation }

var _ blas.Float32 = Implementation{}

// Micro-tile and cache-block sizes. blockM is a multiple of tileM512 (and
// so of tileM) and blockN of tileN512. A blockM×blockK block of packed A
// (168 KiB) stays in L2, a blockK×tileN strip of packed B (16 KiB) in L1;
// on the AVX-512 path the kernel reads two strips of B at once, so its
// depth blocks are shallower (blockK512: 2×16×192 floats, 24 KiB, in a
// 32 KiB L1).
const (
	tileM     = 6
	tileN     = 16
	tileM512  = 2 * tileM
	tileN512  = 2 * tileN
	blockM    = 168
	blockK    = 256
	blockK512 = 192
	blockN    = 4064
)

// Panic strings, the same as gonum's.
const (
	badTranspose = "blas: illegal transpose"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

// Sgemm performs one of the matrix-matrix operations
//
//	C = alpha * A * B + beta * C
//	C = alpha * Aᵀ * B + beta * C
//	C = alpha * A * Bᵀ + beta * C
//	C = alpha * Aᵀ * Bᵀ + beta * C
//
// where A is an m×k or k×m dense matrix, B is an n×k or k×n dense matrix, C is
// an m×n matrix, all row-major, and alpha and beta are scalars. tA and tB
// specify whether A or B are transposed (Trans and ConjTrans are the same).
// It panics on bad arguments exactly as gonum's Sgemm does.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if path == pathGonum {
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	aTrans, bTrans := checkArgs(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		if beta != 1 {
			scaleC(m, n, beta, c, ldc)
		}
		return
	}
	gemm(aTrans, bTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// checkArgs panics as gonum's Sgemm does on bad arguments and reports
// whether A and B are transposed.
func checkArgs(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) (aTrans, bTrans bool) {
	switch tA {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	switch tB {
	default:
		panic(badTranspose)
	case blas.NoTrans, blas.Trans, blas.ConjTrans:
	}
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	aTrans = tA != blas.NoTrans
	bTrans = tB != blas.NoTrans
	if aTrans {
		if lda < max(1, m) {
			panic(badLdA)
		}
	} else if lda < max(1, k) {
		panic(badLdA)
	}
	if bTrans {
		if ldb < max(1, k) {
			panic(badLdB)
		}
	} else if ldb < max(1, n) {
		panic(badLdB)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return aTrans, bTrans
	}
	if aTrans {
		if len(a) < (k-1)*lda+m {
			panic(shortA)
		}
	} else if len(a) < (m-1)*lda+k {
		panic(shortA)
	}
	if bTrans {
		if len(b) < (n-1)*ldb+k {
			panic(shortB)
		}
	} else if len(b) < (k-1)*ldb+n {
		panic(shortB)
	}
	if len(c) < (m-1)*ldc+n {
		panic(shortC)
	}
	return aTrans, bTrans
}

// scaleC sets C = beta·C; beta == 0 stores zeros without reading C.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// Modes of the micro-kernel's update of C.
const (
	storeC    = 0 // C = alpha·acc (beta == 0: C is not read)
	addC      = 1 // C = alpha·acc + C
	scaleAddC = 2 // C = alpha·acc + beta·C
)

func updateMode(beta float32) int {
	switch beta {
	case 0:
		return storeC
	case 1:
		return addC
	}
	return scaleAddC
}

// workspace holds one call's packing buffers. Buffers grow on demand and
// are reused through workspacePool.
type workspace struct {
	packedA, packedB []float32
	edgeA, edgeB     []float32 // zero-padded partial strips of A and B read in place
	tile             [tileM * tileN]float32
}

var workspacePool = sync.Pool{New: func() any { return new(workspace) }}

// alignedFloats returns a slice of n float32 whose first element is 64-byte
// aligned, reusing buf when it is large enough (its capacity: a call that
// needed less must not make the next one allocate).
func alignedFloats(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	raw := make([]float32, n+16)
	off := 0
	if r := uintptr(unsafe.Pointer(&raw[0])) % 64; r != 0 {
		off = int(64-r) / 4
	}
	return raw[off : off+n : off+n]
}

// operand describes where the micro-kernel finds the strips of a block of
// op(A) (6-row strips) or op(B) (16-column strips): strip s starts at
// buf[base+s·stripElems]; within it element (r, p) of A is r·row + p·step
// bytes further, element (p, q) of B is p·step + 4·q bytes further. When
// edge is non-nil, a last strip narrower than the tile is read from edge
// (packed, zero-padded) instead.
type operand struct {
	buf              []float32
	base, stripElems int
	row, step        int
	edge             []float32
}

// strip returns the kernel's pointer and strides for strip s, which is the
// last, partial one when partial is true.
func (o *operand) strip(s int, partial bool, packedStep int) (p *float32, row, step int) {
	if partial && o.edge != nil {
		return &o.edge[0], 4, packedStep
	}
	return &o.buf[o.base+s*o.stripElems], o.row, o.step
}

// Packing costs a pass over the operand and pays when a block is reused
// many times: A across the 16-wide strips of B, B across the 6-tall strips
// of A. For narrow products (LoRA's rank-r ones) the kernel reads A in
// place; for short ones it reads an untransposed B in place.
var (
	packAMinN = 64 // width of C from which A is packed
	packBMinM = 64 // height of C from which an untransposed B is packed
)

// gemm computes C = alpha·op(A)·op(B) + beta·C with the blocked kernel;
// arguments are already checked, m, n, k and alpha are non-zero.
func gemm(aTrans, bTrans bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ws := workspacePool.Get().(*workspace)
	defer workspacePool.Put(ws)
	if bTrans && m <= dotMaxM {
		gemmDot(ws, aTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}

	// Blocks of equal size (rounded up to the tile) rather than full blocks
	// and a thin remainder: a thin last block reuses its B strips too few
	// times.
	wide := path == pathAVX512
	mcBlock := evenBlock(m, blockM, tileM)
	kcBlock := evenBlock(k, blockK, 8)
	if wide {
		mcBlock = evenBlock(m, blockM, tileM512)
		kcBlock = evenBlock(k, blockK512, 8)
	}
	kcMax := min(k, kcBlock)
	packA := n > packAMinN
	packB := bTrans || m > packBMinM
	if packA {
		ws.packedA = alignedFloats(ws.packedA, kcMax*min(roundUp(m, tileM), mcBlock))
	} else {
		ws.edgeA = alignedFloats(ws.edgeA, kcMax*tileM)
	}
	if packB {
		ws.packedB = alignedFloats(ws.packedB, kcMax*min(roundUp(n, tileN), blockN))
	} else {
		ws.edgeB = alignedFloats(ws.edgeB, kcMax*tileN)
	}

	for jc := 0; jc < n; jc += blockN {
		nc := min(blockN, n-jc)
		for pc := 0; pc < k; pc += kcBlock {
			kc := min(kcBlock, k-pc)
			mode := addC
			if pc == 0 {
				mode = updateMode(beta)
			}
			var opB operand
			switch {
			case bTrans:
				packBTrans(ws.packedB, b, ldb, pc, jc, kc, nc)
				opB = operand{buf: ws.packedB, stripElems: tileN * kc, step: 4 * tileN}
			case packB:
				packBNoTrans(ws.packedB, b, ldb, pc, jc, kc, nc)
				opB = operand{buf: ws.packedB, stripElems: tileN * kc, step: 4 * tileN}
			default:
				opB = operand{buf: b, base: pc*ldb + jc, stripElems: tileN, step: 4 * ldb}
				if last := nc - nc%tileN; last < nc {
					packBNoTrans(ws.edgeB, b, ldb, pc, jc+last, kc, nc-last)
					opB.edge = ws.edgeB
				}
			}
			for ic := 0; ic < m; ic += mcBlock {
				mc := min(mcBlock, m-ic)
				var opA operand
				switch {
				case packA:
					if aTrans {
						packATrans(ws.packedA, a, lda, ic, pc, mc, kc)
					} else {
						packANoTrans(ws.packedA, a, lda, ic, pc, mc, kc)
					}
					opA = operand{buf: ws.packedA, stripElems: tileM * kc, row: 4, step: 4 * tileM}
				case aTrans:
					opA = operand{buf: a, base: pc*lda + ic, stripElems: tileM, row: 4, step: 4 * lda}
				default:
					opA = operand{buf: a, base: ic*lda + pc, stripElems: tileM * lda, row: 4 * lda, step: 4}
				}
				if last := mc - mc%tileM; !packA && last < mc {
					// The last strip has fewer than 6 rows: pack it,
					// zero-padded, so that the kernel reads no row past m.
					if aTrans {
						packATrans(ws.edgeA, a, lda, ic+last, pc, mc-last, kc)
					} else {
						packANoTrans(ws.edgeA, a, lda, ic+last, pc, mc-last, kc)
					}
					opA.edge = ws.edgeA
				}
				if wide {
					macroKernel512(&ws.tile, &opA, &opB, mc, nc, kc, alpha, beta, mode, c[ic*ldc+jc:], ldc)
				} else {
					macroKernel(&ws.tile, &opA, &opB, 0, mc, 0, nc, kc, alpha, beta, mode, c[ic*ldc+jc:], ldc)
				}
			}
		}
	}
}

func roundUp(x, to int) int { return (x + to - 1) / to * to }

// evenBlock returns the block size that splits size into as few blocks of
// at most about maxBlock as possible, all the same size rounded up to a
// multiple of unit.
func evenBlock(size, maxBlock, unit int) int {
	blocks := (size + maxBlock - 1) / maxBlock
	return roundUp((size+blocks-1)/blocks, unit)
}

// macroKernel512 computes the mc×nc block of C that starts at c[0] from the
// kc-deep blocks of op(A) and op(B) that opA and opB describe, in 12×32
// tiles with the AVX-512 kernel (each a pair of 6-row strips of A times a
// pair of 16-column strips of B, the layouts macroKernel reads). The rows
// below the last full 12 and the columns right of the last full 32 go
// through macroKernel's 6×16 tiles.
func macroKernel512(tile *[tileM * tileN]float32, opA, opB *operand, mc, nc, kc int, alpha, beta float32, mode int, c []float32, ldc int) {
	m12, n32 := mc-mc%tileM512, nc-nc%tileN512
	for j := 0; j < n32; j += tileN512 {
		b0, _, bStep := opB.strip(j/tileN, false, 4*tileN)
		b1, _, _ := opB.strip(j/tileN+1, false, 4*tileN)
		for i := 0; i < m12; i += tileM512 {
			a0, aRow, aStep := opA.strip(i/tileM, false, 4*tileM)
			a1, _, _ := opA.strip(i/tileM+1, false, 4*tileM)
			kernel512(kc, a0, a1, aRow, aStep, b0, b1, bStep, &c[i*ldc+j], ldc, alpha, beta, mode)
		}
	}
	if m12 < mc && n32 > 0 {
		macroKernel(tile, opA, opB, m12, mc, 0, n32, kc, alpha, beta, mode, c, ldc)
	}
	if n32 < nc {
		macroKernel(tile, opA, opB, 0, mc, n32, nc, kc, alpha, beta, mode, c, ldc)
	}
}

// kernel512 is the AVX-512 micro-kernel; tests on CPUs without AVX-512
// replace it with a Go model of it to exercise macroKernel512.
var kernel512 = kernel12x32

// macroKernel computes the rows i0..i1 and columns j0..j1 (i0 a multiple
// of tileM, j0 of tileN) of the block of C that starts at c[0] from the
// kc-deep blocks of op(A) and op(B) that opA and opB describe, whose last
// strips end at rows i1 and columns j1 (or are full). Edge tiles go
// through tile.
func macroKernel(tile *[tileM * tileN]float32, opA, opB *operand, i0, i1, j0, j1, kc int, alpha, beta float32, mode int, c []float32, ldc int) {
	for j := j0; j < j1; j += tileN {
		nr := min(tileN, j1-j)
		bStrip, _, bStep := opB.strip(j/tileN, nr < tileN, 4*tileN)
		for i := i0; i < i1; i += tileM {
			mr := min(tileM, i1-i)
			aStrip, aRow, aStep := opA.strip(i/tileM, mr < tileM, 4*tileM)
			if mr == tileM && nr == tileN {
				kernel6x16(kc, aStrip, aRow, aStep, bStrip, bStep, &c[i*ldc+j], ldc, alpha, beta, mode)
				continue
			}
			kernel6x16(kc, aStrip, aRow, aStep, bStrip, bStep, &tile[0], tileN, alpha, 0, storeC)
			for r := range mr {
				dst := c[(i+r)*ldc+j : (i+r)*ldc+j+nr]
				src := tile[r*tileN : r*tileN+nr]
				switch mode {
				case storeC:
					copy(dst, src)
				case addC:
					for q, v := range src {
						dst[q] += v
					}
				default:
					for q, v := range src {
						dst[q] = beta*dst[q] + v
					}
				}
			}
		}
	}
}
