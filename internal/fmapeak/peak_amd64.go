package fmapeak

import "golang.org/x/sys/cpu"

// CPU support of each loop (x/sys/cpu's AVX-512 flags include the OS's
// saving of the zmm state).
var (
	hasYMM  = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasZMM  = cpu.X86.HasAVX512F
	hasBF16 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BF16
)

// The loops, in peak_amd64.s.

//go:noescape
func fmaYMM(n int)

//go:noescape
func fmaZMM(n int)

//go:noescape
func dpbf16ZMM(n int)
