//go:build !amd64

package vmath

// Exp32Inplace sets x[i] = exp(x[i]) (Expf; the vector kernel is amd64 only).
func Exp32Inplace(x []float32) {
	for i, v := range x {
		x[i] = Expf(v)
	}
}

// InvOnePlusExp32Inplace sets x[i] = 1/(1 + exp(x[i])).
func InvOnePlusExp32Inplace(x []float32) {
	for i, v := range x {
		x[i] = invOnePlusExpf(v)
	}
}

// vector is false: the kernels are amd64 only.
var vector = false
