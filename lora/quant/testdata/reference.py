"""Reference fixtures for lora/quant, computed with PyTorch (torch 1.13).

Implements, with torch operations, the block-wise quantization that
bitsandbytes documents and runs on CPU (bitsandbytes at 95f9af30:
bitsandbytes/functional.py get_4bit_type, create_dynamic_map,
quantize_4bit with compress_statistics; bitsandbytes/backends/default/ops.py
quantize_4bit, quantize_blockwise, dequantize_4bit, dequantize_blockwise),
and writes the code books and the quantized form of a seeded tensor to
bnb_reference.json. The Go tests read the JSON; they never run Python.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 reference.py
"""
import json

import torch

torch.manual_seed(0)

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
       -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
       0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
       0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]
nf4 = torch.tensor(NF4, dtype=torch.float32)
fp4 = torch.tensor([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, 0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0])
fp4 = fp4 / fp4.abs().max()


def dynamic_map(max_exp=7, total_bits=8):
    # signed dynamic tree code: for exponent i, 2^i + 1 linspace boundaries in
    # [0.1, 1], their midpoints scaled by 10^(i - (max_exp - 1)), both signs;
    # then 0 and 1, padded with zeros to 256, sorted.
    vals = []
    for i in range(max_exp):
        b = torch.linspace(0.1, 1, 2 ** i + 1, dtype=torch.float32)
        m = (b[:-1] + b[1:]) / 2.0
        vals += ((10 ** (-(max_exp - 1) + i)) * m).tolist()
        vals += (-(10 ** (-(max_exp - 1) + i)) * m).tolist()
    vals += [0, 1.0]
    vals += [0] * (2 ** total_bits - len(vals))
    vals.sort()
    return torch.tensor(vals, dtype=torch.float32)


dyn = dynamic_map()


def nearest(scaled, code):
    order = torch.argsort(code, stable=True)
    s = code[order]
    mids = (s[:-1] + s[1:]) / 2
    return order[torch.bucketize(scaled, mids)]


def blocks(a, bs):
    n = a.numel()
    full = n - n % bs
    absmax = a[:full].reshape(-1, bs).abs().max(dim=-1)[0]
    scaled = torch.clamp(a[:full].reshape(-1, bs) * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if n % bs:
        am = a[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, a[full:].abs().max().unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(a[full:] / am, -1, 1)])
    return scaled, absmax


def quant4(a, code, bs, double):
    scaled, absmax = blocks(a, bs)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = nearest(scaled, code).to(torch.uint8)
    packed = (q[::2] << 4) | q[1::2]
    out = {"data": packed.tolist()}
    if double:
        offset = absmax.mean()
        s2, absmax2 = blocks(absmax - offset, 256)
        qa = nearest(s2, dyn)
        out.update(qabsmax=qa.tolist(), absmax2=absmax2.tolist(), offset=offset.item())
        am = dyn[qa] * absmax2.repeat_interleave(256)[: qa.numel()] + offset
    else:
        out["absmax"] = absmax.tolist()
        am = absmax
    codes = torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)[: a.numel()].long()
    dq = code[codes] * am.repeat_interleave(bs)[: a.numel()]
    out["dequant_every_7th"] = dq[::7].tolist()
    return out


# a weight-like tensor of 64·260 + 37 values (a short last block, an odd
# count; 261 blocks, so double quantization has a short second group), from
# integers so that Go makes the same float32 values without this file:
# w[i] = ((i·7919 mod 2001) − 1000) / 50000, and w[5] = 0.5 (an outlier).
n = 64 * 260 + 37
i = torch.arange(n, dtype=torch.int64)
w = ((i * 7919) % 2001 - 1000).to(torch.float32) / 50000
w[5] = 0.5
ref = {
    "nf4_code": nf4.tolist(), "fp4_code": fp4.tolist(), "dynamic_code": dyn.tolist(),
    "nf4_64": quant4(w, nf4, 64, False),
    "nf4_64_dq": quant4(w, nf4, 64, True),
    "fp4_128_dq": quant4(w, fp4, 128, True),
}
with open("bnb_reference.json", "w") as f:
    json.dump(ref, f)
