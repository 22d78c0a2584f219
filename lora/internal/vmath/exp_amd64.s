#include "textflag.h"

// Vector kernels of exp (AVX2 + FMA), eight float32 at a time: Cephes
// expf, as Expf in expf.go. The argument is first clamped to
// [−87.33, 88.37] (so 2^k stays a normal float32: results saturate near
// 1.2e-38 and 2.4e38 instead of 0 and +Inf), with the operands ordered so
// that NaN passes through the clamps and comes out NaN.
//
// Registers: Y0 x, then r; Y1 k = round(x·log2e); Y2 the polynomial, then
// the result; Y3 r²; Y4 2^k; Y5 a polynomial coefficient; Y8–Y15 constants.

// EXP_SETUP loads the constants.
#define EXP_SETUP \
	VBROADCASTSS expHi<>(SB), Y8 \
	VBROADCASTSS expLo<>(SB), Y9 \
	VBROADCASTSS expLog2e<>(SB), Y10 \
	VBROADCASTSS expLn2Hi<>(SB), Y11 \
	VBROADCASTSS expLn2Lo<>(SB), Y12 \
	VBROADCASTSS expOne<>(SB), Y13 \
	VBROADCASTSS expP0<>(SB), Y14 \
	VPCMPEQD     Y15, Y15, Y15 \
	VPSRLD       $25, Y15, Y15

// EXP_Y0 sets Y2 = exp(Y0): clamp x (min then max, x as the second
// source so a NaN x survives); k = round(x·log2e); r = x − k·ln2hi −
// k·ln2lo; p = P0…P5 by Horner in r; e^r = p·r² + r + 1; times 2^k built in
// the exponent bits (k + 127) << 23. Y15 holds 127 per lane.
#define EXP_Y0 \
	VMINPS  Y0, Y8, Y0 \
	VMAXPS  Y0, Y9, Y0 \
	VMULPS  Y10, Y0, Y1 \
	VROUNDPS $0, Y1, Y1 \
	VFNMADD231PS Y11, Y1, Y0 \
	VFNMADD231PS Y12, Y1, Y0 \
	VMOVAPS Y14, Y2 \
	VBROADCASTSS expP1<>(SB), Y5 \
	VFMADD213PS  Y5, Y0, Y2 \
	VBROADCASTSS expP2<>(SB), Y5 \
	VFMADD213PS  Y5, Y0, Y2 \
	VBROADCASTSS expP3<>(SB), Y5 \
	VFMADD213PS  Y5, Y0, Y2 \
	VBROADCASTSS expP4<>(SB), Y5 \
	VFMADD213PS  Y5, Y0, Y2 \
	VBROADCASTSS expP5<>(SB), Y5 \
	VFMADD213PS  Y5, Y0, Y2 \
	VMULPS       Y0, Y0, Y3 \
	VFMADD213PS  Y0, Y3, Y2 \
	VADDPS       Y13, Y2, Y2 \
	VCVTPS2DQ    Y1, Y4 \
	VPADDD       Y15, Y4, Y4 \
	VPSLLD       $23, Y4, Y4 \
	VMULPS       Y4, Y2, Y2

// func expBlocks8(x *float32, n int)
//
// x[i] = exp(x[i]) in place, n a multiple of 8.
TEXT ·expBlocks8(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   expdone
	EXP_SETUP

exploop:
	VMOVUPS (SI), Y0
	EXP_Y0
	VMOVUPS Y2, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     exploop
	VZEROUPPER

expdone:
	RET

// func invOnePlusExpBlocks8(x *float32, n int)
//
// x[i] = 1/(1 + exp(x[i])) in place (a true division), n a multiple of 8:
// σ(−x), and the tanh of x/2 through 1 − 2/(1+exp(x)).
TEXT ·invOnePlusExpBlocks8(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   invdone
	EXP_SETUP

invloop:
	VMOVUPS (SI), Y0
	EXP_Y0
	VADDPS  Y13, Y2, Y2
	VDIVPS  Y2, Y13, Y2                    // 1/(1+e)
	VMOVUPS Y2, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     invloop
	VZEROUPPER

invdone:
	RET

DATA expHi<>+0(SB)/4, $88.37
GLOBL expHi<>(SB), RODATA|NOPTR, $4
DATA expLo<>+0(SB)/4, $-87.33
GLOBL expLo<>(SB), RODATA|NOPTR, $4
DATA expLog2e<>+0(SB)/4, $1.44269504088896341
GLOBL expLog2e<>(SB), RODATA|NOPTR, $4
DATA expLn2Hi<>+0(SB)/4, $0.693359375
GLOBL expLn2Hi<>(SB), RODATA|NOPTR, $4
DATA expLn2Lo<>+0(SB)/4, $-2.12194440e-4
GLOBL expLn2Lo<>(SB), RODATA|NOPTR, $4
DATA expOne<>+0(SB)/4, $1.0
GLOBL expOne<>(SB), RODATA|NOPTR, $4
DATA expP0<>+0(SB)/4, $1.9875691500e-4
GLOBL expP0<>(SB), RODATA|NOPTR, $4
DATA expP1<>+0(SB)/4, $1.3981999507e-3
GLOBL expP1<>(SB), RODATA|NOPTR, $4
DATA expP2<>+0(SB)/4, $8.3334519073e-3
GLOBL expP2<>(SB), RODATA|NOPTR, $4
DATA expP3<>+0(SB)/4, $4.1665795894e-2
GLOBL expP3<>(SB), RODATA|NOPTR, $4
DATA expP4<>+0(SB)/4, $1.6666665459e-1
GLOBL expP4<>(SB), RODATA|NOPTR, $4
DATA expP5<>+0(SB)/4, $5.0000001201e-1
GLOBL expP5<>(SB), RODATA|NOPTR, $4
