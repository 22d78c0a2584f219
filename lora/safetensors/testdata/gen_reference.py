#!/usr/bin/env python3
"""Generates the reference fixtures of lora/safetensors, once, on a developer
machine (Debian: apt-get install python3-torch). Not run by the tests.

reference.safetensors: a file with every common dtype, laid out by the
  algorithm of the reference Rust serializer (huggingface/safetensors
  `prepare`): tensors sorted by descending dtype alignment, then by name;
  compact JSON with "__metadata__" first; padded with spaces to a multiple of 8.
  Tensor bytes come from torch (the python `safetensors` package is not
  packaged in Debian 12, so the header is built here by that algorithm).
conversions.json: float32 bit patterns and torch's float16 / bfloat16
  conversions of them (round to nearest, ties to even), to check
  EncodeFloat32/DecodeFloat32 against an independent implementation.

    python3 gen_reference.py   # from this folder
"""
import json
import random
import struct

import torch

# Declaration order of the reference Dtype enum (increasing alignment).
RANK = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16",
        "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
TORCH = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
    torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32",
    torch.float32: "F32", torch.float64: "F64", torch.int64: "I64",
}


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def serialize(tensors, metadata):
    items = sorted(tensors.items(), key=lambda kv: (-RANK.index(TORCH[kv[1].dtype]), kv[0]))
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in items:
        b = raw_bytes(t)
        header[name] = {"dtype": TORCH[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def main():
    g = torch.Generator().manual_seed(1234)
    tensors = {
        "model.layers.0.self_attn.q_proj.weight": torch.randn(4, 3, generator=g),
        "model.embed_tokens.weight": torch.randn(5, 2, generator=g).to(torch.bfloat16),
        "lm_head.weight": torch.randn(3, 2, generator=g).to(torch.float16),
        "double": torch.tensor([1.0 / 3.0, -2.5e-300], dtype=torch.float64),
        "ids": torch.tensor([0, -1, 2**40], dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.tensor([0, 127, 255], dtype=torch.uint8),
        "small": torch.tensor([-128, 5], dtype=torch.int8),
        "shorts": torch.tensor([-2, 300], dtype=torch.int16),
        "ints": torch.tensor([7, -70000], dtype=torch.int32),
        "scalar": torch.tensor(2.0),
        "empty": torch.zeros(0, 3),
        "naïve \"quoted\"\tname": torch.tensor([1.5]),
    }
    with open("reference.safetensors", "wb") as f:
        f.write(serialize(tensors, {"format": "pt"}))

    rnd = random.Random(42)
    vals = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, 1e9, -1e9, 2**-24, 2**-25,
            3 * 2**-25, 2**-26, 2**-14, 2**-14 - 2**-25, 1 + 2**-11, 1 + 3 * 2**-11,
            1 + 2**-8, 1 + 3 * 2**-8, 3.4e38, float("inf"), float("-inf"), 1e-40]
    bits = [struct.unpack("<I", struct.pack("<f", v))[0] for v in vals]
    for _ in range(4000):  # exponents from far below f16 subnormals to beyond f16 max
        e = rnd.randint(127 - 30, 127 + 20)
        bits.append(rnd.getrandbits(1) << 31 | e << 23 | rnd.getrandbits(23))
    for _ in range(1000):  # any finite float32
        b = rnd.getrandbits(32)
        if (b >> 23) & 0xFF != 0xFF:
            bits.append(b)
    x = torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)
    f16 = x.to(torch.float16).view(torch.int16).to(torch.int64) & 0xFFFF
    bf16 = x.to(torch.bfloat16).view(torch.int16).to(torch.int64) & 0xFFFF
    out = {"source": "torch " + torch.__version__, "f32": bits,
           "f16": f16.tolist(), "bf16": bf16.tolist()}
    with open("conversions.json", "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
