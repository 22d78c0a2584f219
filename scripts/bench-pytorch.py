#!/usr/bin/python3
"""PyTorch side of `scripts/bench-vs-pytorch.sh` (a developer script, not used
by the product or CI): trains the reference workloads of docs/architecture.md (Performance reference) with
LoRA in plain PyTorch on the CPU (Debian's python3-torch 1.13: oneDNN +
OpenBLAS), random weights and tokens, and prints one JSON line with the
tokens/s, like `loraflow bench --json` does for the Go engine.

The models are written out here (no transformers or peft in Debian): Llama
(RMSNorm, RoPE, SwiGLU, untied head) and GPT-2 (LayerNorm, learned
positions, GELU-tanh, fused c_attn, tied head), with LoRA as PEFT computes
it, base(x) + (alpha/r)·B(A(x)), on the workload's target modules, AdamW on
the LoRA parameters only.

The real-scale shapes (llama1b: Llama-3.2-1B; qwen0.5b: Qwen2.5-0.5B's
widths on the llama architecture with q, k, v and o biases, the shape
`loraflow bench` runs) use grouped key-value heads, their rope_theta and a
tied head; llama1b's llama3 RoPE scaling is left out (it changes only the
angles, not the cost).

OMP_WAIT_POLICY=PASSIVE is set before torch loads (unless the caller set
it): with the default, active waiting, PyTorch's idle OpenMP threads spin
and, on a shared 2-core machine, take the CPU from the threads doing work
(13× slower under load).

usage: /usr/bin/python3 scripts/bench-pytorch.py llama30m|gpt2s|llama1b|qwen0.5b [steps] [threads]
"""
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by libgomp when torch loads

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

WORKLOADS = {
    "llama30m": dict(arch="llama", vocab=8192, hidden=512, layers=8, heads=8, inter=1408,
                     batch=8, seq=256, r=16, alpha=32,
                     targets={"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    "gpt2s": dict(arch="gpt2", vocab=50257, hidden=768, layers=12, heads=12, inter=3072,
                  batch=4, seq=256, r=8, alpha=16, targets={"c_attn"}),
    "llama1b": dict(arch="llama", vocab=128256, hidden=2048, layers=16, heads=32, kv_heads=8, head_dim=64,
                    inter=8192, theta=500000.0, tied=True, batch=1, seq=256, r=16, alpha=32,
                    targets={"q_proj", "k_proj", "v_proj", "o_proj"}),
    "qwen0.5b": dict(arch="llama", vocab=151936, hidden=896, layers=24, heads=14, kv_heads=2, head_dim=64,
                     inter=4864, theta=1e6, tied=True, attn_bias=True, batch=1, seq=256, r=16, alpha=32,
                     targets={"q_proj", "k_proj", "v_proj", "o_proj"}),
}


class LoRALinear(nn.Module):
    """A frozen linear layer with PEFT's LoRA branch (B starts at zero)."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scale


def linear(name, cfg, n_in, n_out, bias):
    lin = nn.Linear(n_in, n_out, bias=bias)
    if name in cfg["targets"]:
        return LoRALinear(lin, cfg["r"], cfg["alpha"])
    lin.requires_grad_(False)
    return lin


def causal_attention(q, k, v):
    # q, k, v: [batch, heads, seq, head_dim]; torch 1.13 has no fused SDPA.
    s = q.shape[-2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = torch.ones(s, s, dtype=torch.bool).triu(1)
    return scores.masked_fill(mask, float("-inf")).softmax(-1) @ v


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat((-x2, x1), -1) * sin


class LlamaBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden"], cfg["inter"]
        self.heads, self.kv_heads = cfg["heads"], cfg.get("kv_heads", cfg["heads"])
        self.hd = cfg.get("head_dim", h // self.heads)
        q, kv, bias = self.heads * self.hd, self.kv_heads * self.hd, cfg.get("attn_bias", False)
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(h), RMSNorm(h)
        self.q_proj, self.k_proj = linear("q_proj", cfg, h, q, bias), linear("k_proj", cfg, h, kv, bias)
        self.v_proj, self.o_proj = linear("v_proj", cfg, h, kv, bias), linear("o_proj", cfg, q, h, bias)
        self.gate_proj, self.up_proj = linear("gate_proj", cfg, h, i, False), linear("up_proj", cfg, h, i, False)
        self.down_proj = linear("down_proj", cfg, i, h, False)

    def forward(self, x, cos, sin):
        b, s, h = x.shape
        y = self.input_layernorm(x)
        split = lambda t, n: t.view(b, s, n, self.hd).transpose(1, 2)
        q = split(self.q_proj(y), self.heads)
        k, v = split(self.k_proj(y), self.kv_heads), split(self.v_proj(y), self.kv_heads)
        if self.kv_heads != self.heads:  # grouped key-value heads
            rep = self.heads // self.kv_heads
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = causal_attention(rope(q, cos, sin), rope(k, cos, sin), v)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, s, self.heads * self.hd))
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class GPT2Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden"], cfg["inter"]
        self.heads = cfg["heads"]
        self.ln_1, self.ln_2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.ln_1.requires_grad_(False)
        self.ln_2.requires_grad_(False)
        self.c_attn, self.attn_proj = linear("c_attn", cfg, h, 3 * h, True), linear("c_proj", cfg, h, h, True)
        self.c_fc, self.mlp_proj = linear("c_fc", cfg, h, i, True), linear("c_proj", cfg, i, h, True)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(h, -1)
        split = lambda t: t.view(b, s, self.heads, h // self.heads).transpose(1, 2)
        a = causal_attention(split(q), split(k), split(v))
        x = x + self.attn_proj(a.transpose(1, 2).reshape(b, s, h))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h, v = cfg["hidden"], cfg["vocab"]
        self.embed = nn.Embedding(v, h)
        self.embed.requires_grad_(False)
        if cfg["arch"] == "llama":
            self.blocks = nn.ModuleList(LlamaBlock(cfg) for _ in range(cfg["layers"]))
            self.norm = RMSNorm(h)
            self.lm_head = nn.Linear(h, v, bias=False)
            self.lm_head.requires_grad_(False)
            if cfg.get("tied"):
                self.lm_head.weight = self.embed.weight
            hd = cfg.get("head_dim", h // cfg["heads"])
            inv = 1.0 / (cfg.get("theta", 10000.0) ** (torch.arange(0, hd, 2).float() / hd))
            ang = torch.outer(torch.arange(cfg["seq"]).float(), inv)
            self.register_buffer("cos", torch.cat((ang.cos(), ang.cos()), -1))
            self.register_buffer("sin", torch.cat((ang.sin(), ang.sin()), -1))
        else:
            self.pos = nn.Embedding(1024, h)
            self.pos.requires_grad_(False)
            self.blocks = nn.ModuleList(GPT2Block(cfg) for _ in range(cfg["layers"]))
            self.norm = nn.LayerNorm(h)
            self.norm.requires_grad_(False)

    def forward(self, tokens):
        x = self.embed(tokens)
        if self.cfg["arch"] == "llama":
            for blk in self.blocks:
                x = blk(x, self.cos, self.sin)
            return self.lm_head(self.norm(x))
        x = x + self.pos(torch.arange(tokens.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x) @ self.embed.weight.t()


def main():
    name = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cfg = WORKLOADS[name]
    model = Model(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4)
    b, s, v = cfg["batch"], cfg["seq"], cfg["vocab"]

    def step():
        tokens = torch.randint(0, v, (b, s + 1))
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, v), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocations, oneDNN primitives
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    print(json.dumps({"workload": name, "steps": steps, "threads": threads, "torch": torch.__version__,
                      "trainable_params": sum(p.numel() for p in params),
                      "tokens_per_sec": steps * b * s / elapsed}))


if __name__ == "__main__":
    main()
