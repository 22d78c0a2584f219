package sgemm

// dotMaxM is the number of rows up to which op(A)·Bᵀ is computed as dot
// products of rows (gemmDot) instead of packing B: with a few rows
// (token-by-token generation) each row of B is used only a few times, and
// transposing it into packed strips costs more than the product itself.
var dotMaxM = 4

// gemmDot computes C = alpha·op(A)·Bᵀ + beta·C (B stored n×k) row by row,
// four columns of C at a time with dot4; arguments are checked, m, n, k and
// alpha are non-zero.
func gemmDot(ws *workspace, aTrans bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	k16 := k &^ 15
	if aTrans {
		ws.edgeA = alignedFloats(ws.edgeA, k)
	}
	for i := range m {
		var arow []float32
		if aTrans {
			arow = ws.edgeA[:k]
			for p := range arow {
				arow[p] = a[p*lda+i]
			}
		} else {
			arow = a[i*lda : i*lda+k]
		}
		crow := c[i*ldc : i*ldc+n]
		var sums [4]float32
		for j := 0; j < n; j += 4 {
			cols := min(4, n-j)
			if cols == 4 && k16 > 0 {
				dot4(k16, &arow[0], &b[j*ldb], ldb, &sums)
			} else {
				sums = [4]float32{}
			}
			for q := range cols {
				from := k16
				if cols < 4 {
					from = 0
				}
				brow := b[(j+q)*ldb+from : (j+q)*ldb+k]
				s := sums[q]
				for p, v := range brow {
					s += arow[from+p] * v
				}
				if beta == 0 {
					crow[j+q] = alpha * s
				} else {
					crow[j+q] = alpha*s + beta*crow[j+q]
				}
			}
		}
	}
}
