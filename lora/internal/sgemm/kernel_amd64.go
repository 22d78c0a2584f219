package sgemm

import "golang.org/x/sys/cpu"

// hasKernel reports whether the CPU runs the AVX2/FMA micro-kernel.
var hasKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel6x16 computes the 6×16 tile of C at c (row stride ldc elements)
// from a 6×kc strip of op(A) and a 16-column strip B̃ of op(B) (16
// contiguous floats per step of p, bStep bytes apart):
//
//	acc = strip(A)·B̃
//	mode storeC:    C = alpha·acc
//	mode addC:      C = alpha·acc + C
//	mode scaleAddC: C = alpha·acc + beta·C
//
// Element (r, p) of the A strip is at a + r·aRow + p·aStep bytes, so the
// kernel reads packed strips and row-major or transposed A in place.
// Implemented in kernel_amd64.s.
//
//go:noescape
func kernel6x16(kc int, a *float32, aRow, aStep int, b *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int)
