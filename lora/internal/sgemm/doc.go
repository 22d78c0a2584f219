// Package sgemm is a fast pure-Go (Go assembly, no cgo) single-precision
// matrix multiply: the engine's "go" BLAS backend (the default of a
// CGO_ENABLED=0 build) and, in the openblas backend, the kernel of its narrow
// products.
//
// The engine does every matrix product through gonum's blas.Float32
// interface. With cgo and -tags openblas that is OpenBLAS; without cgo it
// used to be gonum's own Sgemm, which reaches only about 10 GFLOP/s per core
// because it is written as Go loops over axpy and dot kernels that stream
// C and B through memory again for every element of A. No Go library offers
// a fast float32 GEMM with transposes, so this package hand-writes one:
// on this machine class (AMD EPYC, AVX2+FMA) it runs at 75–90 GFLOP/s on
// one core, about OpenBLAS's single-thread speed.
//
// # Structure
//
// Sgemm follows the Goto/BLIS layering:
//
//	for jc over n in steps of blockN          (panel of op(B) columns)
//	  for pc over k in steps of blockK        (depth block)
//	    pack op(B)[pc:pc+kc, jc:jc+nc] into column strips 16 wide
//	    for ic over m in steps of blockM      (block of op(A) rows)
//	      pack op(A)[ic:ic+mc, pc:pc+kc] into row strips 6 tall
//	      for each 16-wide strip of packed B   (stays in L1)
//	        for each 6-tall strip of packed A  (the block stays in L2)
//	          micro-kernel: C[6×16] = alpha · Astrip·Bstrip + beta·C
//
// Transposes are handled entirely by packing (row copies or 8×8 AVX
// transposes, pack_amd64.s), so all four combinations of tA and tB run the
// same micro-kernel on the same packed layout. The micro-kernel
// (kernel_amd64.s) keeps the 6×16 tile of C in twelve ymm registers and does
// twelve FMAs per step of k from two loads of B and six broadcasts of A; it
// applies beta on the first depth block only (beta == 0 stores without
// reading C, so NaN in C does not propagate) and adds on later ones.
//
// The kernel reads A through two strides and B through one, so narrow
// products (n ≤ 64, such as LoRA's rank-r ones, where packing A would cost
// as much as the product) read A in place, and short ones (m ≤ 64, such as
// per-head attention blocks) read an untransposed B in place. Products of a
// few rows with Bᵀ (m ≤ 4, token-by-token generation) skip the blocking and
// run as dot products of rows (dot_amd64.s). Tiles at the right and bottom
// edges are computed into a small temporary tile from zero-padded strips and
// then merged into C.
//
// alpha == 0 or k == 0 only scales C by beta.
//
// Each call is single-threaded and takes its packing buffers from a
// sync.Pool, so Sgemm may be called from many goroutines at once; callers
// split large products over goroutines themselves.
//
// The kernels need AVX2 and FMA (detected with golang.org/x/sys/cpu). On
// other CPUs and architectures Implementation.Sgemm is gonum's Sgemm;
// Accelerated reports which one is in use.
package sgemm
