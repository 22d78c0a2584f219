//go:build !amd64

package sgemm

import "unsafe"

// Plain-Go versions of the packing helpers in pack_amd64.s, so that the
// package builds everywhere; without the amd64 kernel Sgemm is gonum's and
// these are not called.

func floats(p *float32, n int) []float32 { return unsafe.Slice(p, n) }

func copyRows16(dst, src *float32, ld, rows int) {
	d, s := floats(dst, rows*16), floats(src, (rows-1)*ld+16)
	for r := range rows {
		copy(d[r*16:r*16+16], s[r*ld:r*ld+16])
	}
}

func copyRows6(dst, src *float32, ld, rows int) {
	d, s := floats(dst, rows*6), floats(src, (rows-1)*ld+6)
	for r := range rows {
		copy(d[r*6:r*6+6], s[r*ld:r*ld+6])
	}
}

func transpose16(dst, src *float32, ld, blocks int) { transposeRows(dst, src, ld, 16, 8*blocks) }

func transpose6(dst, src *float32, ld, blocks int) { transposeRows(dst, src, ld, 6, 8*blocks) }

// transposeRows sets dst[p*rows+q] = src[q*ld+p] for q < rows, p < cols.
func transposeRows(dst, src *float32, ld, rows, cols int) {
	if cols == 0 {
		return
	}
	d, s := floats(dst, rows*cols), floats(src, (rows-1)*ld+cols)
	for q := range rows {
		for p := range cols {
			d[p*rows+q] = s[q*ld+p]
		}
	}
}

func dot4(k int, a, b *float32, ldb int, out *[4]float32) {
	x, y := floats(a, k), floats(b, 3*ldb+k)
	for q := range 4 {
		var s float32
		for p, v := range x {
			s += v * y[q*ldb+p]
		}
		out[q] = s
	}
}
