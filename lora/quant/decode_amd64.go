package quant

import "golang.org/x/sys/cpu"

var hasAVX2 = cpu.X86.HasAVX2

// decode4AVX2 decodes n bytes (n a multiple of 8) of 4-bit codes into 2n
// values code[nibble]·am. Implemented in decode_amd64.s.
//
//go:noescape
func decode4AVX2(dst *float32, src *byte, n int, code *[16]float32, am float32)

// decode4 decodes whole bytes: len(dst) = 2·len(src).
func decode4(dst []float32, src []byte, code *[16]float32, am float32) {
	n := len(src)
	if hasAVX2 && useAsm && n >= 8 {
		m := n &^ 7
		decode4AVX2(&dst[0], &src[0], m, code, am)
		dst, src = dst[2*m:], src[m:]
	}
	decode4Go(dst, src, code, am)
}
