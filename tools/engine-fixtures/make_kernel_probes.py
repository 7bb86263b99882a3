#!/usr/bin/python3
"""PyTorch's float32 values for the engine kernels, computed the way Hugging Face's Gemma 2/3 code does.

Run with Debian's python (torch 1.13, numpy):  /usr/bin/python3 tools/engine-fixtures/make_kernel_probes.py
Output: tests/GemmaScope.Engine.Tests/Fixtures/kernel-probes.json (small; committed, so the C# tests need no Python).

Each block copies the lines of transformers' modeling_gemma2 / modeling_gemma3 / modeling_rope_utils that it stands
for (transformers itself is not needed). Values are float32, written as their IEEE bit patterns (uint32) so nothing is
lost in JSON.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "GemmaScope.Engine.Tests", "Fixtures", "kernel-probes.json")


def bits(t):
    return np.ascontiguousarray(t.detach().to(torch.float32).numpy()).view(np.uint32).reshape(-1).tolist()


def rope(dim, base, factor, positions):
    # modeling_rope_utils._compute_default_rope_parameters
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
    # _compute_linear_scaling_rope_parameters
    inv_freq = inv_freq / factor
    # Gemma2RotaryEmbedding.forward (attention_scaling 1.0 for default and linear)
    position_ids = torch.tensor([positions], dtype=torch.int64)
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * 1.0
    sin = emb.sin() * 1.0
    return dict(dim=dim, theta=base, factor=factor, positions=positions, inv_freq=bits(inv_freq),
                cos=bits(cos[0, :, : dim // 2]), sin=bits(sin[0, :, : dim // 2]))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


probes = {}
positions = [0, 1, 2, 37, 511, 4000, 8191, 32767, 131071]
probes["rope"] = [rope(256, 10000.0, 1.0, positions), rope(256, 1000000.0, 8.0, positions), rope(128, 10000.0, 1.0, positions)]

# apply_rotary_pos_emb on one head: q * cos + rotate_half(q) * sin
r = probes["rope"][0]
q = torch.randn(len(positions), 256) * 2
cos_full = torch.cat([torch.tensor(np.array(r["cos"], dtype=np.uint32).view(np.float32).reshape(len(positions), 128))] * 2, dim=-1)
sin_full = torch.cat([torch.tensor(np.array(r["sin"], dtype=np.uint32).view(np.float32).reshape(len(positions), 128))] * 2, dim=-1)
probes["rope_apply"] = dict(x=bits(q), y=bits((q * cos_full) + (rotate_half(q) * sin_full)))

# Gemma2RMSNorm: x.float() * rsqrt(x.pow(2).mean(-1) + eps) * (1.0 + w.float())
x = torch.randn(2, 1152) * 3
w = torch.randn(1152) * 0.3
normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
probes["rmsnorm"] = dict(rows=2, width=1152, eps=1e-6, x=bits(x), w=bits(w), y=bits(normed * (1.0 + w.float())))

# gelu_pytorch_tanh(gate) * up
g = torch.cat([torch.randn(500) * 4, torch.tensor([0.0, 1e-6, -1e-6, 12.0, -12.0, 3.0, -3.0])])
u = torch.randn(g.shape[0])
probes["geglu"] = dict(gate=bits(g), up=bits(u), y=bits(F.gelu(g, approximate="tanh") * u))

# soft-cap (final logits, 30): logits / cap; tanh; * cap
s = torch.randn(1000) * 60
probes["softcap"] = dict(cap=30.0, x=bits(s), y=bits(torch.tanh(s / 30.0) * 30.0))

# Embedding normalizer: torch.tensor(hidden_size**0.5, dtype=float32)
probes["normalizer"] = {str(d): bits(torch.tensor(d ** 0.5, dtype=torch.float32))[0] for d in [640, 1152, 2304, 2560, 3584, 3840, 4608, 5376]}

probes["torch_version"] = torch.__version__
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(probes, f, separators=(",", ":"))
print("wrote", OUT, os.path.getsize(OUT), "bytes")
