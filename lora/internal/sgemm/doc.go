// Package sgemm is a fast pure-Go (Go assembly, no cgo) single-precision
// matrix multiply for the engine's CGO_ENABLED=0 build.
//
// The engine does every matrix product through gonum's blas.Float32
// interface. With cgo and -tags openblas that is OpenBLAS; without cgo it
// used to be gonum's own Sgemm, which reaches only about 10 GFLOP/s per core
// because it is written as Go loops over axpy and dot kernels that reload C
// and B from memory for every element of A. No Go library offers a fast
// float32 GEMM with transposes, so this package hand-writes one.
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
//	        for each 6-tall strip of packed A  (block stays in L2)
//	          micro-kernel: C[6×16] += alpha · Astrip · Bstrip
//
// Transposes are handled entirely by the packing routines, so all four
// combinations of tA and tB run the same micro-kernel on the same packed
// layout. The micro-kernel (kernel_amd64.s) keeps the 6×16 tile of C in
// twelve ymm registers and does twelve FMAs per step of k from two loads of
// B and six broadcasts of A. Tiles at the right and bottom edges are
// computed into a small zeroed temporary tile (the packed strips are padded
// with zeros) and then added to C.
//
// beta is applied to C once before the products (beta == 0 stores zeros, so
// NaN in C does not propagate, as in gonum); alpha == 0 or k == 0 only scales
// C.
//
// Each call is single-threaded and uses packing buffers from a sync.Pool,
// so Sgemm may be called from many goroutines at once; callers split large
// products over goroutines themselves.
//
// The kernel needs AVX2 and FMA (detected with golang.org/x/sys/cpu). On
// other CPUs and architectures Implementation.Sgemm is gonum's Sgemm;
// Accelerated reports which one is in use.
package sgemm
