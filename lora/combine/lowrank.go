package combine

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// ProductSVD is the thin singular value decomposition of a product B·A,
// B·A = U·diag(Values)·Vᵀ, with k = len(Values) ≤ min(rows of B, cols of A,
// inner dimension).
type ProductSVD struct {
	U      *mat.Dense // [out, k]
	Values []float64  // descending
	V      *mat.Dense // [in, k]
}

// SVDOfProduct computes the SVD of B·A (B [out, r], A [r, in]) without
// forming the out×in product: with thin QR factorisations B = Q_b·R_b and
// Aᵀ = Q_a·R_a, B·A = Q_b·(R_b·R_aᵀ)·Q_aᵀ, so only the small core R_b·R_aᵀ
// is decomposed. Cost O((out+in)·r²) instead of O(out·in·min(out,in)).
func SVDOfProduct(b, a mat.Matrix) (ProductSVD, error) {
	out, rb := b.Dims()
	ra, in := a.Dims()
	if rb != ra {
		return ProductSVD{}, fmt.Errorf("combine: B is %d×%d but A is %d×%d: inner dimensions differ", out, rb, ra, in)
	}
	qb, rB := thinQR(b)                      // qb [out, kb], rB [kb, r]
	qa, rA := thinQR(mat.DenseCopyOf(a.T())) // qa [in, ka], rA [ka, r]
	var core mat.Dense
	core.Mul(rB, rA.T()) // [kb, ka]
	var svd mat.SVD
	if !svd.Factorize(&core, mat.SVDThin) {
		return ProductSVD{}, fmt.Errorf("combine: SVD of the %d×%d core did not converge", out, in)
	}
	var cu, cv mat.Dense
	svd.UTo(&cu)
	svd.VTo(&cv)
	var u, v mat.Dense
	u.Mul(qb, &cu)
	v.Mul(qa, &cv)
	return ProductSVD{U: &u, Values: svd.Values(nil), V: &v}, nil
}

// thinQR returns Q [m, k] with orthonormal columns and R [k, n] upper
// trapezoidal, k = min(m, n), such that M = Q·R.
func thinQR(m mat.Matrix) (q, r *mat.Dense) {
	rows, cols := m.Dims()
	k := min(rows, cols)
	a := mat.DenseCopyOf(m)
	raw := a.RawMatrix()
	tau := make([]float64, k)
	work := make([]float64, 1)
	lapack64.Geqrf(raw, tau, work, -1)
	work = make([]float64, max(int(work[0]), rows, cols, 1))
	lapack64.Geqrf(raw, tau, work, len(work))

	r = mat.NewDense(max(k, 1), cols, nil)
	for i := 0; i < k; i++ {
		for j := i; j < cols; j++ {
			r.Set(i, j, raw.Data[i*raw.Stride+j])
		}
	}
	// Generate the first k columns of Q in place.
	qg := blas64.General{Rows: rows, Cols: k, Stride: raw.Stride, Data: raw.Data}
	lapack64.Orgqr(qg, tau, work, -1)
	if need := int(work[0]); need > len(work) {
		work = make([]float64, need)
	}
	lapack64.Orgqr(qg, tau, work, len(work))
	q = mat.NewDense(rows, max(k, 1), nil)
	for i := 0; i < rows; i++ {
		for j := 0; j < k; j++ {
			q.Set(i, j, raw.Data[i*raw.Stride+j])
		}
	}
	return q, r
}
