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

// packANoTrans packs op(A) = A, rows ic..ic+mc, columns pc..pc+kc.
func packANoTrans(dst, a []float32, lda, ic, pc, mc, kc int) {
	for i := 0; i < mc; i += tileM {
		strip := dst[i*kc : i*kc+tileM*kc]
		rows := min(tileM, mc-i)
		if rows == tileM {
			base := (ic+i)*lda + pc
			r0 := a[base : base+kc]
			r1 := a[base+lda : base+lda+kc]
			r2 := a[base+2*lda : base+2*lda+kc]
			r3 := a[base+3*lda : base+3*lda+kc]
			r4 := a[base+4*lda : base+4*lda+kc]
			r5 := a[base+5*lda : base+5*lda+kc]
			for p := range kc {
				d := strip[p*tileM : p*tileM+tileM : p*tileM+tileM]
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		clear(strip)
		for r := range rows {
			row := a[(ic+i+r)*lda+pc : (ic+i+r)*lda+pc+kc]
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
		if rows == tileM {
			for p := range kc {
				src := a[(pc+p)*lda+ic+i : (pc+p)*lda+ic+i+tileM]
				copy(strip[p*tileM:p*tileM+tileM], src)
			}
			continue
		}
		clear(strip)
		for p := range kc {
			copy(strip[p*tileM:p*tileM+rows], a[(pc+p)*lda+ic+i:(pc+p)*lda+ic+i+rows])
		}
	}
}

// packBNoTrans packs op(B) = B (k×n), rows pc..pc+kc, columns jc..jc+nc.
func packBNoTrans(dst, b []float32, ldb, pc, jc, kc, nc int) {
	for j := 0; j < nc; j += tileN {
		strip := dst[j*kc : j*kc+tileN*kc]
		cols := min(tileN, nc-j)
		if cols == tileN {
			for p := range kc {
				src := b[(pc+p)*ldb+jc+j : (pc+p)*ldb+jc+j+tileN]
				copy(strip[p*tileN:p*tileN+tileN], src)
			}
			continue
		}
		clear(strip)
		for p := range kc {
			copy(strip[p*tileN:p*tileN+cols], b[(pc+p)*ldb+jc+j:(pc+p)*ldb+jc+j+cols])
		}
	}
}

// packBTrans packs op(B) = Bᵀ (B is n×k), rows pc..pc+kc of op(B), columns
// jc..jc+nc.
func packBTrans(dst, b []float32, ldb, pc, jc, kc, nc int) {
	for j := 0; j < nc; j += tileN {
		strip := dst[j*kc : j*kc+tileN*kc]
		cols := min(tileN, nc-j)
		if cols < tileN {
			clear(strip)
		}
		for q := range cols {
			row := b[(jc+j+q)*ldb+pc : (jc+j+q)*ldb+pc+kc]
			for p, v := range row {
				strip[p*tileN+q] = v
			}
		}
	}
}
