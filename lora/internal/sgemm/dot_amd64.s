#include "textflag.h"

// func dot4(k int, a, b *float32, ldb int, out *[4]float32)
//
// out[q] = Σ_{p<k} a[p]·b[q·ldb+p] for q < 4; k is a multiple of 16. The
// four dot products of one row of A with four rows of B, for products with
// very few rows (m·Bᵀ with m of 1 or 2, as in token-by-token generation),
// where B is streamed once and packing it would cost more than the product.
//
// SI a, DI B row 0 (row 1 at DI+DX), R8 B row 2 (row 3 at R8+DX), DX ldb in
// bytes, CX 16-float blocks left. Y8, Y9 hold a[p:p+16]; row q accumulates
// in Y(2q) and Y(2q+1) (two per row, so that eight FMA chains overlap).
TEXT ·dot4(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), DX
	SHLQ $2, DX
	LEAQ (DI)(DX*2), R8
	MOVQ out+32(FP), R9

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	SHRQ   $4, CX
	JZ     reduce

loop:
	VMOVUPS     (SI), Y8
	VMOVUPS     32(SI), Y9
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS 32(DI), Y9, Y1
	VFMADD231PS (DI)(DX*1), Y8, Y2
	VFMADD231PS 32(DI)(DX*1), Y9, Y3
	VFMADD231PS (R8), Y8, Y4
	VFMADD231PS 32(R8), Y9, Y5
	VFMADD231PS (R8)(DX*1), Y8, Y6
	VFMADD231PS 32(R8)(DX*1), Y9, Y7
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, R8
	DECQ        CX
	JNZ         loop

reduce:
	// Per row, add the two accumulators; then horizontal adds leave
	// [row0, row1, row2, row3] partial sums in each 128-bit lane.
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y5, Y4, Y4
	VADDPS       Y7, Y6, Y6
	VHADDPS      Y2, Y0, Y0
	VHADDPS      Y6, Y4, Y4
	VHADDPS      Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (R9)
	VZEROUPPER
	RET
