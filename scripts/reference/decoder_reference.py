#!/usr/bin/python3
"""Independent PyTorch reference for loraflow's decoder families.

Written from the published model definitions (transformers'
models/<type>/modeling_<type>.py for llama, mistral, qwen2, qwen3, gemma2,
gemma3 (Gemma3ForCausalLM, model_type gemma3_text) and phi3, and
modeling_rope_utils.py for the rope_scaling types), not from loraflow's
code. transformers itself is not installed here: this is a plain-torch
re-statement of those definitions, run in float32 as a checkpoint in
float32 would run there.

Weights are not stored: every tensor is generated from its Hugging Face
name by the formula in hash_weights() below, which lora/reference_test.go
repeats in Go, so a fixture holds only the config, the input tokens and a
slice of the logits (every position's log-sum-exp over the whole
vocabulary, and the logits at a fixed set of columns).

Run (from the repository root, a few minutes for the real-width cases):
    OMP_WAIT_POLICY=PASSIVE flock /tmp/heavy.lock /usr/bin/python3 \\
        scripts/reference/decoder_reference.py [--small-only] [NAME...]
It writes lora/testdata/reference/<name>.json.
"""
import json
import math
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "lora", "testdata", "reference")
MASK32 = 0xFFFFFFFF


# ---------------------------------------------------------------- weights
def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode():
        h ^= b
        h = (h * 0x01000193) & MASK32
    return h


def mul32(x, c):
    """(x * c) mod 2^32 for an int64 tensor x < 2^32, without overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def lowbias32(x):
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    x = x ^ (x >> 16)
    return x


def hash_chunks(name, n, step=1 << 22):
    """Yields (start, u) over n values in [-1, 1) (float64):
    u(i) = lowbias32((i·0x9E3779B9 + fnv1a32(name)) mod 2^32)·2^-31 − 1."""
    h = fnv1a32(name)
    for s in range(0, n, step):
        i = torch.arange(s, min(n, s + step), dtype=torch.int64)
        x = (mul32(i & MASK32, 0x9E3779B9) + h) & MASK32
        yield s, lowbias32(x).to(torch.float64) * 2.0 ** -31 - 1.0


def hash_uniform(name, n):
    out = torch.empty(n, dtype=torch.float64)
    for s, u in hash_chunks(name, n):
        out[s:s + len(u)] = u
    return out


def hash_weights(name, shape, gemma):
    """The tensor called name: off + mul·u, rounded once to float32, with
    (off, mul) = (1, 0.1) for norm weights (Gemma: (0, 0.1), its norms
    multiply by 1+w), (0, 0.1) for biases, (0, 1) for the embeddings and
    (0, 1/√in) for the other matrices [out, in]."""
    n = 1
    for d in shape:
        n *= d
    if name.endswith("norm.weight"):
        off, mul = (0.0, 0.1) if gemma else (1.0, 0.1)
    elif name.endswith(".bias"):
        off, mul = 0.0, 0.1
    elif name.endswith("embed_tokens.weight"):
        off, mul = 0.0, 1.0
    else:
        off, mul = 0.0, 1.0 / math.sqrt(shape[1])
    out = torch.empty(n, dtype=torch.float32)
    for s, u in hash_chunks(name, n):
        out[s:s + len(u)] = (off + mul * u).to(torch.float32)
    return out.reshape(shape)


# ---------------------------------------------------------------- config
class Cfg:
    def __init__(self, d):
        self.d = d
        t = d["model_type"]
        self.t = t
        self.gemma = t in ("gemma2", "gemma3_text")
        self.V, self.H, self.L = d["vocab_size"], d["hidden_size"], d["num_hidden_layers"]
        self.nh = d["num_attention_heads"]
        self.nkv = d.get("num_key_value_heads") or self.nh
        self.hd = d.get("head_dim") or self.H // self.nh
        self.I = d["intermediate_size"]
        self.eps = d.get("rms_norm_eps", 1e-5 if t == "phi3" else 1e-6)
        self.theta = d.get("rope_theta", 1e6 if t == "gemma3_text" else 1e4)
        self.maxpos = d.get("max_position_embeddings", 2048)
        self.tie = d.get("tie_word_embeddings", self.gemma)
        self.rs = d.get("rope_scaling")
        self.rot = int(self.hd * d.get("partial_rotary_factor", 1.0))
        # Biases: LlamaAttention/Qwen3Attention bias=attention_bias on q,k,v,o;
        # Qwen2Attention bias=True on q,k,v only; LlamaMLP bias=mlp_bias.
        self.qkv_bias = d.get("attention_bias", False) or t == "qwen2"
        self.o_bias = d.get("attention_bias", False) and t in ("llama", "qwen3")
        self.mlp_bias = d.get("mlp_bias", False) and t == "llama"
        self.qk_norm = t in ("qwen3", "gemma3_text")
        self.fused = t == "phi3"
        if self.gemma:
            self.scaling = d.get("query_pre_attn_scalar", 256) ** -0.5
        else:
            self.scaling = self.hd ** -0.5
        dflt = {"gemma2": (50.0, 30.0)}.get(t, (None, None))
        self.attn_cap = d.get("attn_logit_softcapping", dflt[0]) if self.gemma else None
        self.final_cap = d.get("final_logit_softcapping", dflt[1]) if self.gemma else None
        self.window = self.layer_windows()

    def layer_windows(self):
        d, t = self.d, self.t
        w = d.get("sliding_window")
        if t == "llama":
            return [None] * self.L
        if t in ("qwen2", "qwen3"):
            if not d.get("use_sliding_window", False):
                return [None] * self.L
            mwl = d.get("max_window_layers", self.L)
            slide = [i >= mwl for i in range(self.L)]
        elif t == "gemma2":
            w = w or 4096
            slide = [i % 2 == 0 for i in range(self.L)]
        elif t == "gemma3_text":
            w = w or 4096
            pat = d.get("sliding_window_pattern", 6)
            slide = [(i + 1) % pat != 0 for i in range(self.L)]
        else:  # mistral, phi3: every layer
            slide = [True] * self.L
        if "layer_types" in d:
            slide = [x == "sliding_attention" for x in d["layer_types"]]
        return [w if (s and w) else None for s in slide]


# ---------------------------------------------------------------- rope
def inv_freq_and_scale(cfg, theta, rs, seq_len):
    """modeling_rope_utils.py: ROPE_INIT_FUNCTIONS[rope_type]."""
    dim = cfg.rot
    base_inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    if kind in (None, "default", "dynamic"):  # dynamic = default up to max_position_embeddings
        return base_inv, 1.0
    if kind == "linear":
        return base_inv / rs["factor"], 1.0
    if kind == "llama3":
        f, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        wl = 2 * math.pi / base_inv
        out = torch.where(wl > old / lo, base_inv / f, base_inv)
        sm = (old / wl - lo) / (hi - lo)
        mid = ~(wl < old / hi) & ~(wl > old / lo)
        return torch.where(mid, (1 - sm) * out / f + sm * out, out), 1.0
    if kind == "yarn":
        f = rs["factor"]
        att = rs.get("attention_factor") or (0.1 * math.log(f) + 1.0)
        bf, bs = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

        def corr(rot):
            return (dim * math.log(cfg.maxpos / (rot * 2 * math.pi))) / (2 * math.log(theta))

        low, high = max(math.floor(corr(bf)), 0), min(math.ceil(corr(bs)), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        extra = 1 - ramp
        pos = theta ** (torch.arange(0, dim, 2).float() / dim)
        return (1.0 / (f * pos)) * (1 - extra) + (1.0 / pos) * extra, att
    if kind == "longrope":
        orig = cfg.d.get("original_max_position_embeddings") or rs["original_max_position_embeddings"]
        factor = cfg.maxpos / orig
        att = rs.get("attention_factor")
        if att is None:
            att = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"], dtype=torch.float32)
        return 1.0 / (ext * theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim)), att
    raise ValueError(kind)


def cos_sin(cfg, layer, S):
    theta, rs = cfg.theta, cfg.rs
    if cfg.t == "gemma3_text" and cfg.window[layer] is not None:
        theta, rs = cfg.d.get("rope_local_base_freq", 1e4), None  # rotary_emb_local
    inv, att = inv_freq_and_scale(cfg, theta, rs, S)
    pos = torch.arange(S, dtype=torch.float32)
    freqs = pos[:, None] @ inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * att, emb.sin() * att


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin, rot):
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)


# ---------------------------------------------------------------- model
def rmsnorm(x, w, eps, gemma):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * (1.0 + w) if gemma else y * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def forward(cfg, W, tokens):
    S = len(tokens)
    nh, nkv, hd, H, I = cfg.nh, cfg.nkv, cfg.hd, cfg.H, cfg.I
    lin = lambda x, name, bias: x @ W[name + ".weight"].T + (W[name + ".bias"] if bias else 0)
    nrm = lambda x, name: rmsnorm(x, W[name], cfg.eps, cfg.gemma)
    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]
    if cfg.gemma:
        x = x * torch.tensor(H ** 0.5, dtype=torch.float32)
    for i in range(cfg.L):
        p = "model.layers.%d." % i
        r = x
        h = nrm(x, p + "input_layernorm.weight")
        if cfg.fused:
            qkv = lin(h, p + "self_attn.qkv_proj", False)
            q, k, v = qkv[:, :nh * hd], qkv[:, nh * hd:(nh + nkv) * hd], qkv[:, (nh + nkv) * hd:]
        else:
            q = lin(h, p + "self_attn.q_proj", cfg.qkv_bias)
            k = lin(h, p + "self_attn.k_proj", cfg.qkv_bias)
            v = lin(h, p + "self_attn.v_proj", cfg.qkv_bias)
        q, k, v = q.view(S, nh, hd), k.view(S, nkv, hd), v.view(S, nkv, hd)
        if cfg.qk_norm:
            q = nrm(q, p + "self_attn.q_norm.weight")
            k = nrm(k, p + "self_attn.k_norm.weight")
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, S, hd]
        cos, sin = cos_sin(cfg, i, S)
        q, k = apply_rope(q, cos, sin, cfg.rot), apply_rope(k, cos, sin, cfg.rot)
        k = k.repeat_interleave(nh // nkv, dim=0)  # repeat_kv
        v = v.repeat_interleave(nh // nkv, dim=0)
        s = (q @ k.transpose(1, 2)) * cfg.scaling
        if cfg.attn_cap:
            s = torch.tanh(s / cfg.attn_cap) * cfg.attn_cap
        qi = torch.arange(S)[:, None]
        ki = torch.arange(S)[None, :]
        keep = ki <= qi
        if cfg.window[i] is not None:
            keep = keep & (ki > qi - cfg.window[i])
        s = s.masked_fill(~keep, float("-inf"))
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        a = a.transpose(0, 1).reshape(S, nh * hd)
        a = lin(a, p + "self_attn.o_proj", cfg.o_bias)
        if cfg.gemma:
            a = nrm(a, p + "post_attention_layernorm.weight")
        x = r + a
        r = x
        h = nrm(x, p + ("pre_feedforward_layernorm.weight" if cfg.gemma else "post_attention_layernorm.weight"))
        if cfg.fused:
            gu = lin(h, p + "mlp.gate_up_proj", False)
            g, u = gu.chunk(2, dim=-1)
        else:
            g = lin(h, p + "mlp.gate_proj", cfg.mlp_bias)
            u = lin(h, p + "mlp.up_proj", cfg.mlp_bias)
        act = gelu_tanh(g) if cfg.gemma else torch.nn.functional.silu(g)
        m = lin(act * u, p + "mlp.down_proj", cfg.mlp_bias)
        if cfg.gemma:
            m = nrm(m, p + "post_feedforward_layernorm.weight")
        x = r + m
    x = nrm(x, "model.norm.weight")
    head = W["model.embed_tokens.weight"] if cfg.tie else W["lm_head.weight"]
    logits = x @ head.T
    if cfg.final_cap:
        logits = torch.tanh(logits / cfg.final_cap) * cfg.final_cap
    return logits


def tensor_shapes(cfg):
    nh, nkv, hd, H, I, V = cfg.nh, cfg.nkv, cfg.hd, cfg.H, cfg.I, cfg.V
    out = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    if not cfg.tie:
        out["lm_head.weight"] = (V, H)
    for i in range(cfg.L):
        p = "model.layers.%d." % i
        out[p + "input_layernorm.weight"] = (H,)
        if cfg.fused:
            out[p + "self_attn.qkv_proj.weight"] = ((nh + 2 * nkv) * hd, H)
            out[p + "mlp.gate_up_proj.weight"] = (2 * I, H)
        else:
            for n, o in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                out[p + "self_attn.%s_proj.weight" % n] = (o, H)
                if cfg.qkv_bias:
                    out[p + "self_attn.%s_proj.bias" % n] = (o,)
            for n in ("gate", "up"):
                out[p + "mlp.%s_proj.weight" % n] = (I, H)
                if cfg.mlp_bias:
                    out[p + "mlp.%s_proj.bias" % n] = (I,)
        out[p + "self_attn.o_proj.weight"] = (H, nh * hd)
        if cfg.o_bias:
            out[p + "self_attn.o_proj.bias"] = (H,)
        out[p + "mlp.down_proj.weight"] = (H, I)
        if cfg.mlp_bias:
            out[p + "mlp.down_proj.bias"] = (H,)
        if cfg.qk_norm:
            out[p + "self_attn.q_norm.weight"] = (hd,)
            out[p + "self_attn.k_norm.weight"] = (hd,)
        if cfg.gemma:
            out[p + "post_attention_layernorm.weight"] = (H,)
            out[p + "pre_feedforward_layernorm.weight"] = (H,)
            out[p + "post_feedforward_layernorm.weight"] = (H,)
        else:
            out[p + "post_attention_layernorm.weight"] = (H,)
    return out


# ---------------------------------------------------------------- cases
def small(t, **kw):
    d = {"model_type": t, "vocab_size": 96, "hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 80, "max_position_embeddings": 64}
    d.update(kw)
    return d


def longrope_factors(n, a, b):
    return [round(a + (b - a) * i / max(1, n - 1), 4) for i in range(n)]


CASES = [
    # small configs: every switch of the family on, 24 tokens so that the windows bite
    ("llama-small", small("llama", attention_bias=True, mlp_bias=True, head_dim=16, tie_word_embeddings=False,
                          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}), 24, False),
    ("llama-linear-small", small("llama", rope_scaling={"type": "linear", "factor": 4.0}), 24, False),
    ("llama-dynamic-small", small("llama", rope_scaling={"type": "dynamic", "factor": 4.0}), 24, False),
    ("llama-yarn-small", small("llama", rope_theta=5000.0,
                               rope_scaling={"rope_type": "yarn", "factor": 4.0, "beta_fast": 16.0, "beta_slow": 2.0}), 24, False),
    ("mistral-small", small("mistral", sliding_window=5), 24, False),
    ("qwen2-small", small("qwen2", use_sliding_window=True, sliding_window=6, max_window_layers=1,
                          tie_word_embeddings=True), 24, False),
    ("qwen3-small", small("qwen3", head_dim=20, attention_bias=True), 24, False),
    ("gemma2-small", small("gemma2", head_dim=16, query_pre_attn_scalar=20, sliding_window=5,
                           attn_logit_softcapping=3.0, final_logit_softcapping=8.0), 24, False),
    ("gemma3-small", small("gemma3_text", num_hidden_layers=4, head_dim=16, query_pre_attn_scalar=24, sliding_window=5,
                           sliding_window_pattern=2, rope_scaling={"rope_type": "linear", "factor": 8.0},
                           rope_local_base_freq=100.0), 24, False),
    ("phi3-small", small("phi3", partial_rotary_factor=0.5, sliding_window=7, original_max_position_embeddings=16,
                         rope_scaling={"type": "longrope", "short_factor": longrope_factors(3, 1.0, 1.5),
                                       "long_factor": longrope_factors(3, 2.0, 9.0)}), 24, False),
    ("phi3-short-small", small("phi3", partial_rotary_factor=0.5, original_max_position_embeddings=32,
                               rope_scaling={"type": "longrope", "short_factor": longrope_factors(3, 1.0, 1.5),
                                             "long_factor": longrope_factors(3, 2.0, 9.0)}), 24, False),
    # the real models' exact config.json widths, layers cut to 2 (Gemma 3: 6, so that a global layer is in)
    ("llama3.2-1b", {"model_type": "llama", "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
                     "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                     "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
                     "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                     "tie_word_embeddings": True, "hidden_act": "silu", "attention_bias": False, "mlp_bias": False}, 12, True),
    ("qwen2.5-0.5b", {"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
                      "num_hidden_layers": 2, "num_attention_heads": 14, "num_key_value_heads": 2,
                      "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
                      "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 21,
                      "tie_word_embeddings": True, "hidden_act": "silu"}, 12, True),
    ("qwen3-0.6b", {"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
                    "num_hidden_layers": 2, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                    "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
                    "attention_bias": False, "use_sliding_window": False, "sliding_window": None,
                    "max_window_layers": 28, "tie_word_embeddings": True, "hidden_act": "silu"}, 12, True),
    ("mistral-7b", {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                    "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 8,
                    "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
                    "sliding_window": 4096, "tie_word_embeddings": False, "hidden_act": "silu"}, 12, True),
    ("gemma2-2b", {"model_type": "gemma2", "vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216,
                   "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                   "query_pre_attn_scalar": 256, "max_position_embeddings": 8192, "rms_norm_eps": 1e-6,
                   "rope_theta": 10000.0, "sliding_window": 4096, "attn_logit_softcapping": 50.0,
                   "final_logit_softcapping": 30.0, "hidden_activation": "gelu_pytorch_tanh",
                   "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": True}, 12, True),
    ("gemma3-1b", {"model_type": "gemma3_text", "vocab_size": 262144, "hidden_size": 1152, "intermediate_size": 6912,
                   "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
                   "query_pre_attn_scalar": 256, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
                   "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": None,
                   "sliding_window": 512, "sliding_window_pattern": 6, "attn_logit_softcapping": None,
                   "final_logit_softcapping": None, "hidden_activation": "gelu_pytorch_tanh",
                   "tie_word_embeddings": True}, 12, True),
    ("phi3-mini", {"model_type": "phi3", "vocab_size": 32064, "hidden_size": 3072, "intermediate_size": 8192,
                   "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 32,
                   "max_position_embeddings": 4096, "original_max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
                   "rope_theta": 10000.0, "rope_scaling": None, "sliding_window": 2047, "tie_word_embeddings": False,
                   "hidden_act": "silu", "attention_dropout": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0}, 12, True),
]

NCOLS = 24


def run(name, d, S, heavy):
    cfg = Cfg(d)
    W = {n: hash_weights(n, s, cfg.gemma) for n, s in tensor_shapes(cfg).items()}
    tokens = [int(x) for x in (hash_uniform("tokens:" + name, S) * 0.5 + 0.5) * cfg.V]
    with torch.no_grad():
        lg = forward(cfg, W, tokens).double()
    cols = sorted(set(int(c) for c in (hash_uniform("cols:" + name, NCOLS) * 0.5 + 0.5) * cfg.V))
    fx = {
        "name": name, "heavy": heavy, "weights": "hash-v1", "config": d, "tokens": tokens, "cols": cols,
        "logsumexp": torch.logsumexp(lg, dim=-1).tolist(),
        "max_abs": float(lg.abs().max()),
        "logits": lg[:, cols].tolist(),
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(fx, f, indent=1)
    print("%s: S=%d max|logit|=%.3f" % (name, S, fx["max_abs"]), flush=True)


def main():
    torch.set_num_threads(2)
    args = sys.argv[1:]
    small_only = "--small-only" in args
    names = [a for a in args if not a.startswith("--")]
    for name, d, S, heavy in CASES:
        if names and name not in names:
            continue
        if small_only and heavy:
            continue
        run(name, d, S, heavy)


if __name__ == "__main__":
    main()
