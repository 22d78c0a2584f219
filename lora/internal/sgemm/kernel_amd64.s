#include "textflag.h"

// func kernel6x16(kc int, a, b, c *float32, ldc int, alpha float32)
//
// C[0:6][0:16] += alpha · Σ_p Ã[p][0:6] ⊗ B̃[p][0:16]
//
// Registers:
//   AX  packed A: 6 floats (24 bytes) per step of p
//   BX  packed B: 16 floats (64 bytes) per step of p
//   CX  steps of p left (first in fours, then singly)
//   DI  C row 0, R8 C row 3, R9..R12 rows 1, 2, 4, 5; SI ldc in bytes
//   Y0..Y11  the C tile: row r in Y(2r) (columns 0-7) and Y(2r+1) (8-15)
//   Y12, Y13 B̃[p][0:8], B̃[p][8:16]
//   Y14, Y15 broadcasts of Ã[p][r], alternating so that a load can issue
//            while the previous row's FMAs still read the other register
//
// Each step of p is 2 loads of B, 6 broadcasts of A and 12 FMAs; Zen 3 and
// Haswell-class cores issue 2 FMAs per cycle, so a step takes 6 cycles and
// the 12 independent accumulators cover the FMA latency.

// STEP does one step of p with Ã at aoff(AX) and B̃ at boff(BX).
#define STEP(aoff, boff) \
	VMOVUPS      boff(BX), Y12; \
	VMOVUPS      boff+32(BX), Y13; \
	VBROADCASTSS aoff(AX), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS aoff+4(AX), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS aoff+8(AX), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS aoff+12(AX), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS aoff+16(AX), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS aoff+20(AX), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11

// UPDATE adds alpha (in Y15) times the accumulators lo, hi to the 16 floats
// of C at (row): C = acc·alpha + C.
#define UPDATE(lo, hi, row) \
	VFMADD213PS (row), Y15, lo; \
	VFMADD213PS 32(row), Y15, hi; \
	VMOVUPS     lo, (row); \
	VMOVUPS     hi, 32(row)

TEXT ·kernel6x16(SB), NOSPLIT, $0-44
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), SI
	SHLQ $2, SI                 // ldc in bytes
	LEAQ (DI)(SI*2), R8
	ADDQ SI, R8                 // R8 = row 3 of C

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
	PREFETCHT0 384(AX)
	PREFETCHT0 1024(BX)
	STEP(0, 0)
	STEP(24, 64)
	PREFETCHT0 1088(BX)
	STEP(48, 128)
	STEP(72, 192)
	ADDQ $96, AX
	ADDQ $256, BX
	DECQ DX
	JNZ  loop4

tail:
	ANDQ $3, CX                 // kc%4 single steps
	JZ   update

loop1:
	STEP(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

update:
	VBROADCASTSS alpha+40(FP), Y15
	LEAQ         (DI)(SI*1), R9
	LEAQ         (DI)(SI*2), R10
	LEAQ         (R8)(SI*1), R11
	LEAQ         (R8)(SI*2), R12
	UPDATE(Y0, Y1, DI)
	UPDATE(Y2, Y3, R9)
	UPDATE(Y4, Y5, R10)
	UPDATE(Y6, Y7, R8)
	UPDATE(Y8, Y9, R11)
	UPDATE(Y10, Y11, R12)
	VZEROUPPER
	RET
