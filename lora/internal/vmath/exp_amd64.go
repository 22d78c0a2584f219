package vmath

import "golang.org/x/sys/cpu"

// vector is whether Exp32Inplace runs the AVX2 kernel (exp_amd64.s).
var vector = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func expBlocks8(x *float32, n int)

// Exp32Inplace sets x[i] = exp(x[i]): eight at a time in assembly where the
// CPU has AVX2 and FMA, the rest with Expf.
func Exp32Inplace(x []float32) { blocks8(x, expBlocks8, Expf) }

//go:noescape
func invOnePlusExpBlocks8(x *float32, n int)

// InvOnePlusExp32Inplace sets x[i] = 1/(1 + exp(x[i])).
func InvOnePlusExp32Inplace(x []float32) { blocks8(x, invOnePlusExpBlocks8, invOnePlusExpf) }

// blocks8 runs kernel on the leading multiple of 8 of x (when the CPU has
// the vector kernels) and scalar on the rest.
func blocks8(x []float32, kernel func(*float32, int), scalar func(float32) float32) {
	n8 := 0
	if vector {
		n8 = len(x) &^ 7
		if n8 > 0 {
			kernel(&x[0], n8)
		}
	}
	for i, v := range x[n8:] {
		x[n8+i] = scalar(v)
	}
}
