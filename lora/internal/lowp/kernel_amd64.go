package lowp

import "golang.org/x/sys/cpu"

// hasBF16 reports whether this CPU runs the AVX512_BF16 kernels (the OS
// saving the AVX-512 state is part of x/sys/cpu's AVX512F check).
var hasBF16 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512BF16

// dotPacked12x32 computes the 12×32 tile out (row-major) of BF16 pair dot
// products of 12 rows of A (BF16, lda bytes apart) with a packed B (32 pair
// words per step). Implemented in kernel_amd64.s.
//
//go:noescape
func dotPacked12x32(kp int, a *uint16, lda int, b *uint32, out *float32)

// dotRows12x32 is dotPacked12x32 with B read in place from BF16 rows (ldb
// bytes apart), its columns in the lane order of rowsOrder.
//
//go:noescape
func dotRows12x32(kp int, a *uint16, lda int, b *uint16, ldb int, out *float32)

// cvtBF16 rounds n float32 values (n a multiple of 32) to BF16.
//
//go:noescape
func cvtBF16(dst *uint16, src *float32, n int)
