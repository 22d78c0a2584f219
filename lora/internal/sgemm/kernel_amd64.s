#include "textflag.h"

// func kernel6x16(kc int, a *float32, aRow, aStep int, b *float32, bStep int, c *float32, ldc int, alpha, beta float32, mode int)
//
//	acc[0:6][0:16] = Σ_p op(A)[r][p] · B̃[p][0:16]
//	mode 0: C = alpha·acc            (C not read: beta == 0)
//	mode 1: C = alpha·acc + C        (beta == 1)
//	mode 2: C = alpha·acc + beta·C
//
// A is read in place through two byte strides: element (r, p) of the 6×kc
// strip is at a + r·aRow + p·aStep. A packed strip has aRow 4 and aStep 24,
// an unpacked row-major A has aRow 4·lda and aStep 4, and an unpacked
// transposed A aRow 4 and aStep 4·lda. B̃ holds 16 contiguous floats per
// step of p, bStep bytes apart: 64 in a packed strip, 4·ldb for an
// untransposed B read in place.
//
// Registers in the loop:
//
//	AX   A rows 0-2 (rows at AX, AX+R9, AX+2·R9), advanced by R11 per step
//	R10  A rows 3-5 (AX + 3·R9), advanced by R11 per step
//	R9   aRow, R11 aStep (bytes)
//	BX   B̃, advanced by R13 (bStep) per step
//	CX   steps of p left; DX unrolled (×4) iterations left
//	DI   C row 0; SI ldc in bytes; R8 C row 3
//	Y0..Y11  the C tile: row r in Y(2r) (columns 0-7) and Y(2r+1) (8-15)
//	Y12, Y13 B̃[p][0:8], B̃[p][8:16]
//	Y14, Y15 broadcasts of A[r][p], alternating so that the next load can
//	         issue while the previous row's FMAs still read the other one
//
// Each step of p is 2 loads of B, 6 broadcasts of A and 12 independent
// FMAs; a Zen 3 or Haswell-class core issues 2 FMAs per cycle, so a step
// takes 6 cycles, and 12 accumulators cover the 4-5 cycle FMA latency.

// STEP does one step of p, then advances A and B̃.
#define STEP \
	VMOVUPS      (BX), Y12; \
	VMOVUPS      32(BX), Y13; \
	VBROADCASTSS (AX), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS (AX)(R9*1), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS (AX)(R9*2), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS (R10), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS (R10)(R9*1), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS (R10)(R9*2), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11; \
	ADDQ         R11, AX; \
	ADDQ         R11, R10; \
	ADDQ         R13, BX

// STORE writes alpha (Y15) times the accumulators lo, hi to the 16 floats
// of C at (row).
#define STORE(lo, hi, row) \
	VMULPS  Y15, lo, lo; \
	VMULPS  Y15, hi, hi; \
	VMOVUPS lo, (row); \
	VMOVUPS hi, 32(row)

// ADD adds alpha (Y15) times the accumulators to C at (row).
#define ADD(lo, hi, row) \
	VFMADD213PS (row), Y15, lo; \
	VFMADD213PS 32(row), Y15, hi; \
	VMOVUPS     lo, (row); \
	VMOVUPS     hi, 32(row)

// SCALEADD sets C at (row) to alpha (Y15) times the accumulators plus beta
// (Y14) times C.
#define SCALEADD(lo, hi, row) \
	VMULPS      (row), Y14, Y12; \
	VMULPS      32(row), Y14, Y13; \
	VFMADD231PS Y15, lo, Y12; \
	VFMADD231PS Y15, hi, Y13; \
	VMOVUPS     Y12, (row); \
	VMOVUPS     Y13, 32(row)

// ROWS applies one of the macros above to the six rows of the tile.
#define ROWS(OP) \
	OP(Y0, Y1, DI); \
	OP(Y2, Y3, R9); \
	OP(Y4, Y5, R10); \
	OP(Y6, Y7, R8); \
	OP(Y8, Y9, R11); \
	OP(Y10, Y11, R12)

TEXT ·kernel6x16(SB), NOSPLIT, $0-80
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ aRow+16(FP), R9
	MOVQ aStep+24(FP), R11
	MOVQ b+32(FP), BX
	MOVQ bStep+40(FP), R13
	MOVQ c+48(FP), DI
	MOVQ ldc+56(FP), SI
	SHLQ $2, SI                 // ldc in bytes
	LEAQ (DI)(SI*2), R8
	ADDQ SI, R8                 // R8 = C row 3
	LEAQ (AX)(R9*2), R10
	ADDQ R9, R10                // R10 = A row 3

	// Bring the C tile towards L1 while the products run.
	PREFETCHT0 (DI)
	PREFETCHT0 63(DI)
	PREFETCHT0 (DI)(SI*1)
	PREFETCHT0 63(DI)(SI*1)
	PREFETCHT0 (DI)(SI*2)
	PREFETCHT0 63(DI)(SI*2)
	PREFETCHT0 (R8)
	PREFETCHT0 63(R8)
	PREFETCHT0 (R8)(SI*1)
	PREFETCHT0 63(R8)(SI*1)
	PREFETCHT0 (R8)(SI*2)
	PREFETCHT0 63(R8)(SI*2)

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	MOVQ CX, DX
	SHRQ $2, DX                 // DX = kc/4 unrolled iterations
	JZ   tail

loop4:
	PREFETCHT0 (BX)(R13*8)      // B̃ 8 steps ahead
	STEP
	PREFETCHT0 (BX)(R13*8)
	STEP
	PREFETCHT0 (BX)(R13*8)
	STEP
	PREFETCHT0 (BX)(R13*8)
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
	// Row pointers of C: DI, R9, R10, R8, R11, R12 for rows 0-5.
	LEAQ         (DI)(SI*1), R9
	LEAQ         (DI)(SI*2), R10
	LEAQ         (R8)(SI*1), R11
	LEAQ         (R8)(SI*2), R12
	VBROADCASTSS alpha+64(FP), Y15
	MOVQ         mode+72(FP), DX
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
	VBROADCASTSS beta+68(FP), Y14
	ROWS(SCALEADD)
	VZEROUPPER
	RET
