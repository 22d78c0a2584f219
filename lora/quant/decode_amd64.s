#include "textflag.h"

// func decode4AVX2(dst *float32, src *byte, n int, code *[16]float32, am float32)
//
// dst[2i], dst[2i+1] = code[src[i]>>4]·am, code[src[i]&15]·am for i < n (n a
// multiple of 8): 8 bytes (16 values) a step. VPERMPS looks up the low 3
// bits of each index in code[0:8] and code[8:16]; VBLENDVPS picks by bit 3
// (shifted into the sign); the high- and low-nibble values are then
// interleaved back into element order.
TEXT ·decode4AVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ code+24(FP), AX
	VMOVUPS (AX), Y12            // code[0:8]
	VMOVUPS 32(AX), Y13          // code[8:16]
	VBROADCASTSS am+32(FP), Y14
	MOVL $15, DX
	MOVQ DX, X15
	VPBROADCASTD X15, Y15        // nibble mask
	SHRQ $3, CX
	JZ done

loop:
	VPMOVZXBD (SI), Y0           // 8 bytes, one a dword
	VPSRLD $4, Y0, Y1            // high nibbles: elements 2i
	VPAND Y15, Y0, Y2            // low nibbles: elements 2i+1

	VPERMPS Y12, Y1, Y3
	VPERMPS Y13, Y1, Y4
	VPSLLD $28, Y1, Y5
	VBLENDVPS Y5, Y4, Y3, Y3

	VPERMPS Y12, Y2, Y6
	VPERMPS Y13, Y2, Y7
	VPSLLD $28, Y2, Y8
	VBLENDVPS Y8, Y7, Y6, Y6

	VMULPS Y14, Y3, Y3
	VMULPS Y14, Y6, Y6
	VUNPCKLPS Y6, Y3, Y7         // lanes: elements 0-3 | 8-11
	VUNPCKHPS Y6, Y3, Y8         // elements 4-7 | 12-15
	VPERM2F128 $0x20, Y8, Y7, Y9 // elements 0-7
	VPERM2F128 $0x31, Y8, Y7, Y10 // elements 8-15
	VMOVUPS Y9, (DI)
	VMOVUPS Y10, 32(DI)
	ADDQ $8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ loop

done:
	VZEROUPPER
	RET
