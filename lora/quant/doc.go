// Package quant holds frozen base weights in 4 or 8 bits, block-wise, as
// QLoRA does (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of
// Quantized LLMs") and in the layout of bitsandbytes, the library QLoRA
// runs on.
//
// A tensor is quantized as one flat array in blocks of BlockSize values
// (the last block may be shorter). Each block keeps its absolute maximum
// (absmax); each value is scaled by 1/absmax into [−1, 1] and replaced by
// the index of the nearest entry of a 16- or 256-entry code book:
//
//   - NF4, NormalFloat4: the 16 quantiles of N(0, 1) of the QLoRA paper,
//     normalised to [−1, 1] with an exact zero (NF4Code);
//   - FP4: bitsandbytes' 4-bit float (1 sign, 2 exponent, 1 mantissa bit,
//     bias 2), in bit-pattern order, normalised by its maximum (FP4Code);
//   - INT8: the linear code round(127·x)/127 (symmetric 8-bit, block-wise;
//     this is not LLM.int8()'s row-wise scheme with outlier columns).
//
// Two 4-bit codes share a byte, the first value in the high nibble, as
// bitsandbytes' quantize_4bit packs them. With double quantization the
// absmax constants themselves are quantized as bitsandbytes'
// compress_statistics does: their mean (Offset) is subtracted and the
// result quantized block-wise in blocks of 256 with the signed 8-bit
// dynamic code (DynamicCode), keeping one float32 absmax per 256 blocks.
// For block size 64 that is 8/64 + 32/(64·256) ≈ 0.127 bits a parameter for
// the constants instead of 0.5, as the paper computes.
//
// Dequantize reconstructs any range of elements, so a product can decode a
// weight tile by tile without a full-precision copy.
//
// Sources (bitsandbytes at 95f9af30): bitsandbytes/functional.py
// (get_4bit_type: the NF4 and FP4 tables; create_dynamic_map; quantize_4bit
// with compress_statistics: offset = absmax.mean(), quantize_blockwise of
// absmax − offset with blocksize 256; the accepted block sizes) and
// bitsandbytes/backends/default/ops.py (quantize_4bit: scaled =
// clamp(A·(1/absmax), −1, 1), nearest code by bucketize on the midpoints,
// packed = q[0::2] << 4 | q[1::2]; dequantize_4bit and dequantize_blockwise:
// code[q]·absmax in float32).
package quant
