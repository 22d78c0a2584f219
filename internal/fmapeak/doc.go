// Package fmapeak measures the CPU's physical arithmetic limit: loops of
// independent multiply-add chains that touch no memory, run on every core
// at once, timed. Their rate is the most any kernel can reach, and
// `loraflow bench` divides each training step's achieved GFLOP/s by it.
//
// Three loops, each where the CPU has the instructions:
//
//   - fp32-avx2: VFMADD231PS on ymm registers, 12 independent chains
//     (8 float32 lanes, 16 FLOPs an instruction);
//   - fp32-avx512: VFMADD231PS on zmm registers, 16 chains (32 FLOPs);
//   - bf16-avx512: VDPBF16PS on zmm registers, 12 chains (32 bf16 products
//     summed pairwise into 16 float32 lanes: 64 FLOPs), encoded as bytes
//     because the Go assembler does not know the mnemonic.
//
// Twelve chains or more cover the FMA latency of a core with two FMA pipes
// (4-5 cycles × 2), so the loops are bound by issue, not by dependencies.
package fmapeak
