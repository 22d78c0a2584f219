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
// on this machine class (AMD EPYC, AVX2+FMA) the AVX2 kernel runs at 75–90
// GFLOP/s on one core, about OpenBLAS's single-thread speed (OpenBLAS runs
// its Haswell kernels here), and an AVX-512 kernel is chosen where the CPU
// has it.
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
// # Kernels and their choice
//
// Two micro-kernels share the packed layouts above:
//
//   - avx2 (kernel_amd64.s): the 6×16 tile in twelve ymm registers, AVX2 and
//     FMA;
//   - avx512 (kernel512_amd64.s): a 12×32 tile in 24 zmm registers, each
//     step two 64-byte loads of B (two adjacent 16-column strips), twelve
//     broadcasts of A (two adjacent 6-row strips) and 24 FMAs, so twice the
//     FMAs per load of the avx2 kernel and all 32 zmm registers in use.
//     Its depth blocks are blockK512 deep so that the pair of B strips
//     stays in a 32 KiB L1. Rows and columns past the last full 12×32 tile
//     go through the avx2 kernel's 6×16 tiles.
//
// The choice is made once at start-up from golang.org/x/sys/cpu: AVX-512F
// (HasAVX512F includes the OS's saving of the zmm state) → avx2 (AVX2 and
// FMA) → gonum's Sgemm (other CPUs and architectures). The environment
// variable LORAFLOW_SGEMM (EnvKernel) forces one of them, and UseKernel
// switches at run time for benchmarks; the tests run on every kernel the
// machine has. Kernels lists them, Kernel names the one in use and
// Accelerated reports whether it is an assembly one.
//
// Where the CPU lacks AVX-512, the tests still run the avx512 path's
// blocking and edge code with a Go model of kernel12x32 in its place, and
// testdata/emulate_kernel512.py runs the assembled kernel itself in an
// instruction-level emulator of its disassembly (GNU objdump) against
// numpy.
package sgemm
