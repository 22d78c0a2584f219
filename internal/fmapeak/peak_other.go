//go:build !amd64

package fmapeak

const hasYMM, hasZMM, hasBF16 = false, false, false

func fmaYMM(n int)    { panic("fmapeak: amd64 only") }
func fmaZMM(n int)    { panic("fmapeak: amd64 only") }
func dpbf16ZMM(n int) { panic("fmapeak: amd64 only") }
