#include "textflag.h"

// func kernel12x32(kc int, a0, a1 *float32, aRow, aStep int, b0, b1 *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int)
//
//	acc[0:12][0:32] = Σ_p op(A)[r][p] · B̃[p][0:32]
//	mode 0: C = alpha·acc            (C not read: beta == 0)
//	mode 1: C = alpha·acc + C        (beta == 1)
//	mode 2: C = alpha·acc + beta·C
//
// The AVX-512 counterpart of kernel6x16 on the same packed layouts: the
// 12×32 tile is two 6-row strips of A (rows 0-5 at a0, rows 6-11 at a1,
// each read through the byte strides aRow and aStep exactly as kernel6x16
// reads its strip) times two 16-column strips of B̃ (columns 0-15 at b0,
// 16-31 at b1, 16 contiguous floats per step of p, bStep bytes apart).
//
// Registers in the loop:
//
//	AX, R10   A rows 0-2 and 3-5 (a0, a0 + 3·aRow)
//	R12, R14  A rows 6-8 and 9-11 (a1, a1 + 3·aRow)
//	R9 aRow, R11 aStep (bytes); all four A pointers advance by R11 per step
//	BX, R8    B̃ columns 0-15 and 16-31, advanced by R13 (bStep) per step
//	CX        steps of p left; DX unrolled (×4) iterations left
//	Z0..Z23   the C tile: row r in Z(2r) (columns 0-15) and Z(2r+1) (16-31)
//	Z24, Z25  B̃[p][0:16], B̃[p][16:32]
//	Z26..Z29  broadcasts of A[r][p], in rotation
//
// Each step of p is 2 loads of B̃, 12 broadcasts of A and 24 independent
// FMAs: twice kernel6x16's FMAs per load, and 24 accumulators cover the
// FMA latency of a core with two 512-bit FMA pipes.

#define ROWPAIR(ar, bc, lo, hi) \
	VBROADCASTSS ar, bc; \
	VFMADD231PS  Z24, bc, lo; \
	VFMADD231PS  Z25, bc, hi

#define STEP \
	VMOVUPS (BX), Z24; \
	VMOVUPS (R8), Z25; \
	ROWPAIR((AX), Z26, Z0, Z1); \
	ROWPAIR((AX)(R9*1), Z27, Z2, Z3); \
	ROWPAIR((AX)(R9*2), Z28, Z4, Z5); \
	ROWPAIR((R10), Z29, Z6, Z7); \
	ROWPAIR((R10)(R9*1), Z26, Z8, Z9); \
	ROWPAIR((R10)(R9*2), Z27, Z10, Z11); \
	ROWPAIR((R12), Z28, Z12, Z13); \
	ROWPAIR((R12)(R9*1), Z29, Z14, Z15); \
	ROWPAIR((R12)(R9*2), Z26, Z16, Z17); \
	ROWPAIR((R14), Z27, Z18, Z19); \
	ROWPAIR((R14)(R9*1), Z28, Z20, Z21); \
	ROWPAIR((R14)(R9*2), Z29, Z22, Z23); \
	ADDQ    R11, AX; \
	ADDQ    R11, R10; \
	ADDQ    R11, R12; \
	ADDQ    R11, R14; \
	ADDQ    R13, BX; \
	ADDQ    R13, R8

// The update macros work on the C row at (DI) and then step DI to the next
// row (SI = ldc in bytes). Z31 holds alpha, Z30 beta.

// STORE: C = alpha·acc.
#define STORE(lo, hi) \
	VMULPS  Z31, lo, lo; \
	VMULPS  Z31, hi, hi; \
	VMOVUPS lo, (DI); \
	VMOVUPS hi, 64(DI); \
	ADDQ    SI, DI

// ADD: C = alpha·acc + C.
#define ADD(lo, hi) \
	VFMADD213PS (DI), Z31, lo; \
	VFMADD213PS 64(DI), Z31, hi; \
	VMOVUPS     lo, (DI); \
	VMOVUPS     hi, 64(DI); \
	ADDQ        SI, DI

// SCALEADD: C = alpha·acc + beta·C.
#define SCALEADD(lo, hi) \
	VMULPS      (DI), Z30, Z24; \
	VMULPS      64(DI), Z30, Z25; \
	VFMADD231PS Z31, lo, Z24; \
	VFMADD231PS Z31, hi, Z25; \
	VMOVUPS     Z24, (DI); \
	VMOVUPS     Z25, 64(DI); \
	ADDQ        SI, DI

#define ROWS(OP) \
	OP(Z0, Z1); \
	OP(Z2, Z3); \
	OP(Z4, Z5); \
	OP(Z6, Z7); \
	OP(Z8, Z9); \
	OP(Z10, Z11); \
	OP(Z12, Z13); \
	OP(Z14, Z15); \
	OP(Z16, Z17); \
	OP(Z18, Z19); \
	OP(Z20, Z21); \
	OP(Z22, Z23)

// PREFETCHROW brings the 128 bytes of a C row at (DI) towards L1 and steps
// DI to the next row.
#define PREFETCHROW \
	PREFETCHT0 (DI); \
	PREFETCHT0 64(DI); \
	PREFETCHT0 127(DI); \
	ADDQ       SI, DI

#define ZERO(r) VPXORD r, r, r

TEXT ·kernel12x32(SB), NOSPLIT, $0-96
	MOVQ c+64(FP), DI
	MOVQ ldc+72(FP), SI
	SHLQ $2, SI                 // ldc in bytes

	// Bring the C tile towards L1 while the products run.
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW

	MOVQ kc+0(FP), CX
	MOVQ a0+8(FP), AX
	MOVQ a1+16(FP), R12
	MOVQ aRow+24(FP), R9
	MOVQ aStep+32(FP), R11
	MOVQ b0+40(FP), BX
	MOVQ b1+48(FP), R8
	MOVQ bStep+56(FP), R13
	LEAQ (AX)(R9*2), R10
	ADDQ R9, R10                // R10 = A row 3
	LEAQ (R12)(R9*2), R14
	ADDQ R9, R14                // R14 = A row 9

	ZERO(Z0)
	ZERO(Z1)
	ZERO(Z2)
	ZERO(Z3)
	ZERO(Z4)
	ZERO(Z5)
	ZERO(Z6)
	ZERO(Z7)
	ZERO(Z8)
	ZERO(Z9)
	ZERO(Z10)
	ZERO(Z11)
	ZERO(Z12)
	ZERO(Z13)
	ZERO(Z14)
	ZERO(Z15)
	ZERO(Z16)
	ZERO(Z17)
	ZERO(Z18)
	ZERO(Z19)
	ZERO(Z20)
	ZERO(Z21)
	ZERO(Z22)
	ZERO(Z23)

	MOVQ CX, DX
	SHRQ $2, DX                 // DX = kc/4 unrolled iterations
	JZ   tail

loop4:
	PREFETCHT0 (BX)(R13*8)      // B̃ 8 steps ahead
	PREFETCHT0 (R8)(R13*8)
	STEP
	STEP
	PREFETCHT0 (BX)(R13*8)
	PREFETCHT0 (R8)(R13*8)
	STEP
	STEP
	DECQ DX
	JNZ  loop4

tail:
	ANDQ $3, CX                 // kc%4 single steps
	JZ   update

loop1:
	STEP
	DECQ CX
	JNZ  loop1

update:
	MOVQ         c+64(FP), DI
	VBROADCASTSS alpha+80(FP), Z31
	MOVQ         mode+88(FP), DX
	CMPQ         DX, $1
	JEQ          add
	JGT          scaleadd
	ROWS(STORE)
	VZEROUPPER
	RET

add:
	ROWS(ADD)
	VZEROUPPER
	RET

scaleadd:
	VBROADCASTSS beta+84(FP), Z30
	ROWS(SCALEADD)
	VZEROUPPER
	RET
