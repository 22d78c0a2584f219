package sgemm

// Packing helpers in pack_amd64.s; see pack.go for the layouts.

// copyRows16 sets dst[r*16+q] = src[r*ld+q] for r < rows, q < 16.
//
//go:noescape
func copyRows16(dst, src *float32, ld, rows int)

// copyRows6 sets dst[r*6+q] = src[r*ld+q] for r < rows, q < 6.
//
//go:noescape
func copyRows6(dst, src *float32, ld, rows int)

// transpose16 sets dst[p*16+q] = src[q*ld+p] for q < 16, p < 8·blocks.
//
//go:noescape
func transpose16(dst, src *float32, ld, blocks int)

// transpose6 sets dst[p*6+r] = src[r*ld+p] for r < 6, p < 8·blocks.
//
//go:noescape
func transpose6(dst, src *float32, ld, blocks int)

// dot4 sets out[q] = Σ_{p<k} a[p]·b[q·ldb+p] for q < 4; k is a multiple
// of 16. Implemented in dot_amd64.s.
//
//go:noescape
func dot4(k int, a, b *float32, ldb int, out *[4]float32)
