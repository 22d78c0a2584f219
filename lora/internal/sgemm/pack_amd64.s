#include "textflag.h"

// Packing helpers for pack.go. All pointers are to float32; ld is a row
// stride in elements. None of them reads or writes outside the rows×width
// (or width×kc) region they are given.

// func copyRows16(dst, src *float32, ld, rows int)
//
// dst[r*16+q] = src[r*ld+q] for r < rows, q < 16: one 16-wide strip of
// untransposed B. DI dst (64 bytes per row), SI src, DX ld in bytes,
// CX rows left.
TEXT ·copyRows16(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), DX
	SHLQ $2, DX
	MOVQ rows+24(FP), CX
	TESTQ CX, CX
	JZ   done16

loop16:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    DX, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     loop16

done16:
	VZEROUPPER
	RET

// func copyRows6(dst, src *float32, ld, rows int)
//
// dst[r*6+q] = src[r*ld+q] for r < rows, q < 6: one 6-row strip of
// transposed A (each row of the stored k×m A gives 6 consecutive rows of
// op(A)). Each row moves as 16 + 8 bytes.
TEXT ·copyRows6(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), DX
	SHLQ $2, DX
	MOVQ rows+24(FP), CX
	TESTQ CX, CX
	JZ   done6

loop6:
	MOVUPS (SI), X0
	MOVQ   16(SI), X1
	MOVUPS X0, (DI)
	MOVQ   X1, 16(DI)
	ADDQ   DX, SI
	ADDQ   $24, DI
	DECQ   CX
	JNZ    loop6

done6:
	RET

// TRANSPOSE8 transposes the 8×8 block in Y0..Y7 (row i in Yi) into
// Y8..Y15 (column j of the input in Y(8+j)), with Y0..Y7 as scratch:
// unpack pairs of rows (a0 b0 a1 b1 | a4 b4 a5 b5 ...), shuffle pairs of
// those into quarter-columns (a0 b0 c0 d0 | a4 b4 c4 d4 ...), then join the
// 128-bit halves of rows 0-3 and 4-7 (a0 .. h0).
#define TRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8; \
	VUNPCKHPS  Y1, Y0, Y9; \
	VUNPCKLPS  Y3, Y2, Y10; \
	VUNPCKHPS  Y3, Y2, Y11; \
	VUNPCKLPS  Y5, Y4, Y12; \
	VUNPCKHPS  Y5, Y4, Y13; \
	VUNPCKLPS  Y7, Y6, Y14; \
	VUNPCKHPS  Y7, Y6, Y15; \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// LOAD8 loads 8 floats from each of the 8 rows at base, base+ld, ...,
// base+3·ld (R8 = ld, R9 = 3·ld bytes) and hi, hi+ld, ..., hi+3·ld.
#define LOAD8(base, hi) \
	VMOVUPS (base), Y0; \
	VMOVUPS (base)(R8*1), Y1; \
	VMOVUPS (base)(R8*2), Y2; \
	VMOVUPS (base)(R9*1), Y3; \
	VMOVUPS (hi), Y4; \
	VMOVUPS (hi)(R8*1), Y5; \
	VMOVUPS (hi)(R8*2), Y6; \
	VMOVUPS (hi)(R9*1), Y7

// STORE16 writes the transposed columns Y8..Y15 as the halves at off(DI)
// of 8 consecutive 64-byte rows of a packed B strip.
#define STORE16(off) \
	VMOVUPS Y8, off(DI); \
	VMOVUPS Y9, off+64(DI); \
	VMOVUPS Y10, off+128(DI); \
	VMOVUPS Y11, off+192(DI); \
	VMOVUPS Y12, off+256(DI); \
	VMOVUPS Y13, off+320(DI); \
	VMOVUPS Y14, off+384(DI); \
	VMOVUPS Y15, off+448(DI)

// func transpose16(dst, src *float32, ld, blocks int)
//
// dst[p*16+q] = src[q*ld+p] for q < 16, p < 8·blocks: the 16 rows of a
// stored n×k B become one packed 16-column strip of op(B) = Bᵀ, 8 steps of
// p at a time as two 8×8 transposes.
// SI, R10, R11, R12: rows 0, 4, 8, 12 of src, advanced 32 bytes per block;
// DI dst, advanced 512 bytes per block; CX blocks left.
TEXT ·transpose16(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), R10
	LEAQ (R10)(R8*4), R11
	LEAQ (R11)(R8*4), R12
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JZ   doneT16

loopT16:
	LOAD8(SI, R10)
	TRANSPOSE8
	STORE16(0)
	LOAD8(R11, R12)
	TRANSPOSE8
	STORE16(32)
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $32, R11
	ADDQ $32, R12
	ADDQ $512, DI
	DECQ CX
	JNZ  loopT16

doneT16:
	VZEROUPPER
	RET

// STORE6 writes the first 6 floats of column Yj as row j of a packed A
// strip (24 bytes at 24·j(DI)): 16 bytes, then the next 8 from the upper
// half.
#define STORE6(Yj, Xj, j) \
	VMOVUPS      Xj, (24*j)(DI); \
	VEXTRACTF128 $1, Yj, X0; \
	VMOVQ        X0, (24*j+16)(DI)

// func transpose6(dst, src *float32, ld, blocks int)
//
// dst[p*6+r] = src[r*ld+p] for r < 6, p < 8·blocks: 6 rows of a stored
// m×k A become one packed 6-row strip, 8 steps of p at a time as an 8×8
// transpose whose last two rows are zero.
// SI rows 0-3, R10 rows 4-5 of src, advanced 32 bytes per block; DI dst,
// advanced 192 bytes per block; CX blocks left.
TEXT ·transpose6(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), R10
	MOVQ blocks+24(FP), CX
	TESTQ CX, CX
	JZ   doneT6

loopT6:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R8*1), Y1
	VMOVUPS (SI)(R8*2), Y2
	VMOVUPS (SI)(R9*1), Y3
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(R8*1), Y5
	VXORPS  Y6, Y6, Y6
	VXORPS  Y7, Y7, Y7
	TRANSPOSE8
	STORE6(Y8, X8, 0)
	STORE6(Y9, X9, 1)
	STORE6(Y10, X10, 2)
	STORE6(Y11, X11, 3)
	STORE6(Y12, X12, 4)
	STORE6(Y13, X13, 5)
	STORE6(Y14, X14, 6)
	STORE6(Y15, X15, 7)
	ADDQ $32, SI
	ADDQ $32, R10
	ADDQ $192, DI
	DECQ CX
	JNZ  loopT6

doneT6:
	VZEROUPPER
	RET
