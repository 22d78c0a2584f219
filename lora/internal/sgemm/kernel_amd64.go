package sgemm

import "golang.org/x/sys/cpu"

// hasKernel reports whether the CPU runs the AVX2/FMA micro-kernel.
var hasKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel6x16 adds alpha·Ã·B̃ to the 6×16 tile of C at c (row stride ldc
// elements), where a points to a packed 6-row strip of A and b to a packed
// 16-column strip of B, both kc deep. Implemented in kernel_amd64.s.
//
//go:noescape
func kernel6x16(kc int, a, b, c *float32, ldc int, alpha float32)
