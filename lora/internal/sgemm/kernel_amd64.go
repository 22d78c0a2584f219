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

// hasAVX512 reports whether the CPU and the OS run the AVX-512 micro-kernel
// (x/sys/cpu's HasAVX512F includes the OS's saving of the zmm state, XCR0
// bits 5-7). The kernel uses AVX-512F instructions only.
var hasAVX512 = hasKernel && cpu.X86.HasAVX512F

// kernel12x32 is kernel6x16's AVX-512 counterpart on a 12×32 tile: rows
// 0-5 of the A strip pair at a0, rows 6-11 at a1 (each read through aRow
// and aStep as in kernel6x16), columns 0-15 of B̃ at b0 and 16-31 at b1
// (bStep bytes per step of p). Implemented in kernel512_amd64.s.
//
//go:noescape
func kernel12x32(kc int, a0, a1 *float32, aRow, aStep int, b0, b1 *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int)
