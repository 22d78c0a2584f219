package sgemm

// The packed layouts the micro-kernel reads:
//
// Packed A: the mc×kc block of op(A) as ceil(mc/6) strips of 6 rows; strip s
// holds, for each p in [0,kc), op(A)[6s+0..6s+5][p] contiguously, so strip s
// starts at 6·s·kc. Rows past mc are zero.
//
// Packed B: the kc×nc block of op(B) as ceil(nc/16) strips of 16 columns;
// strip t holds, for each p, op(B)[p][16t+0..16t+15] contiguously, starting
// at 16·t·kc. Columns past nc are zero.
//
// Full strips go through the vector helpers (copyRows16, copyRows6,
// transpose16, transpose6); partial strips at the edges, and the last kc%8
// steps of the transposing ones, through plain loops.

// packANoTrans packs op(A) = A, rows ic..ic+mc, columns pc..pc+kc.
func packANoTrans(dst, a []float32, lda, ic, pc, mc, kc int) {
	for i := 0; i < mc; i += tileM {
		strip := dst[i*kc : i*kc+tileM*kc]
		rows := min(tileM, mc-i)
		base := (ic+i)*lda + pc
		if rows == tileM {
			blocks := kc / 8
			transpose6(&strip[0], &a[base], lda, blocks)
			for p := blocks * 8; p < kc; p++ {
				for r := range tileM {
					strip[p*tileM+r] = a[base+r*lda+p]
				}
			}
			continue
		}
		clear(strip)
		for r := range rows {
			row := a[base+r*lda : base+r*lda+kc]
			for p, v := range row {
				strip[p*tileM+r] = v
			}
		}
	}
}

// packATrans packs op(A) = Aᵀ (A is k×m), rows ic..ic+mc of op(A), columns
// pc..pc+kc.
func packATrans(dst, a []float32, lda, ic, pc, mc, kc int) {
	for i := 0; i < mc; i += tileM {
		strip := dst[i*kc : i*kc+tileM*kc]
		rows := min(tileM, mc-i)
		base := pc*lda + ic + i
		if rows == tileM {
			copyRows6(&strip[0], &a[base], lda, kc)
			continue
		}
		clear(strip)
		for p := range kc {
			copy(strip[p*tileM:p*tileM+rows], a[base+p*lda:base+p*lda+rows])
		}
	}
}

// packBNoTrans packs op(B) = B (k×n), rows pc..pc+kc, columns jc..jc+nc.
func packBNoTrans(dst, b []float32, ldb, pc, jc, kc, nc int) {
	for j := 0; j < nc; j += tileN {
		strip := dst[j*kc : j*kc+tileN*kc]
		cols := min(tileN, nc-j)
		base := pc*ldb + jc + j
		if cols == tileN {
			copyRows16(&strip[0], &b[base], ldb, kc)
			continue
		}
		clear(strip)
		for p := range kc {
			copy(strip[p*tileN:p*tileN+cols], b[base+p*ldb:base+p*ldb+cols])
		}
	}
}

// packBTrans packs op(B) = Bᵀ (B is n×k), rows pc..pc+kc of op(B), columns
// jc..jc+nc.
func packBTrans(dst, b []float32, ldb, pc, jc, kc, nc int) {
	for j := 0; j < nc; j += tileN {
		strip := dst[j*kc : j*kc+tileN*kc]
		cols := min(tileN, nc-j)
		base := (jc+j)*ldb + pc
		from := 0
		if cols == tileN {
			blocks := kc / 8
			transpose16(&strip[0], &b[base], ldb, blocks)
			from = blocks * 8
		} else {
			clear(strip)
		}
		for q := range cols {
			row := b[base+q*ldb+from : base+q*ldb+kc]
			for p, v := range row {
				strip[(from+p)*tileN+q] = v
			}
		}
	}
}
