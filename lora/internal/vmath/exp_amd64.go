package vmath

import "golang.org/x/sys/cpu"

// vector is whether Exp32Inplace runs the AVX2 kernel (exp_amd64.s).
var vector = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func expBlocks8(x *float32, n int)

// Exp32Inplace sets x[i] = exp(x[i]): eight at a time in assembly where the
// CPU has AVX2 and FMA, the rest with expf.
func Exp32Inplace(x []float32) {
	n8 := 0
	if vector {
		n8 = len(x) &^ 7
		if n8 > 0 {
			expBlocks8(&x[0], n8)
		}
	}
	for i, v := range x[n8:] {
		x[n8+i] = Expf(v)
	}
}

//go:noescape
func invOnePlusExpBlocks8(x *float32, n int)

// InvOnePlusExp32Inplace sets x[i] = 1/(1 + exp(x[i])).
func InvOnePlusExp32Inplace(x []float32) {
	n8 := 0
	if vector {
		n8 = len(x) &^ 7
		if n8 > 0 {
			invOnePlusExpBlocks8(&x[0], n8)
		}
	}
	for i, v := range x[n8:] {
		x[n8+i] = 1 / (1 + Expf(v))
	}
}
