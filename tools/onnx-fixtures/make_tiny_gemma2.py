#!/usr/bin/python3
"""Builds the tiny Gemma 2 ONNX fixtures for GemmaScope.Onnx tests.

Run with Debian's python (torch 1.13, onnx, numpy):  /usr/bin/python3 tools/onnx-fixtures/make_tiny_gemma2.py
Outputs go to tests/GemmaScope.Onnx.Tests/Fixtures/tiny-gemma2/:
  weights.npz            the module's weights under Hugging Face names (float32), read by the C# reference forward
  config.json            the configuration the C# reference forward uses
  torch/model.onnx       torch.onnx (opset 17) export: /model/layers.{l}/... naming, like Optimum's export
  external/model.onnx    the same module exported with Optimum's "with past" signature (past_key_values.{l}.key/value
                         in, present.{l}.key/value out), every initializer in external/model.onnx_data
  genai/model.onnx       the layout of onnxruntime-genai's model builder (SkipSimplifiedLayerNormalization,
                         GroupQueryAttention with rotary/softcap/local window, past/present KV cache)
  probe.json             a few logits of the PyTorch module for a smoke check of the export

The module follows Hugging Face's Gemma2ForCausalLM (module names and semantics), written from scratch here so that
no transformers install is needed. The C# tests never need Python: the outputs are committed.
"""
import json
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

CFG = dict(
    vocab_size=256,
    hidden_size=48,  # d_model; heads * head_dim = 64 != d_model so attn.hook_z cannot be confused with the residual
    intermediate_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    query_pre_attn_scalar=24,  # != head_dim on purpose
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    sliding_window=4,  # smaller than the test sequences, so it matters
    max_position_embeddings=64,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)
SEED = 20240805
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures",
                   "tiny-gemma2")


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        out = out * (1.0 + self.weight.float())
        return out.type_as(x)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, base):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids):
        freqs = position_ids.float()[:, :, None] * self.inv_freq[None, None, :]  # [B, T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        self.h, self.kv, self.d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        self.scaling = c["query_pre_attn_scalar"] ** -0.5
        self.softcap = c["attn_logit_softcapping"]
        self.is_sliding = not bool(layer_idx % 2)  # HF Gemma 2: even layers slide
        hs = c["hidden_size"]
        self.q_proj = nn.Linear(hs, self.h * self.d, bias=False)
        self.k_proj = nn.Linear(hs, self.kv * self.d, bias=False)
        self.v_proj = nn.Linear(hs, self.kv * self.d, bias=False)
        self.o_proj = nn.Linear(self.h * self.d, hs, bias=False)

    def forward(self, x, cos, sin, global_mask, sliding_mask, past=None):
        b, t = x.shape[0], x.shape[1]
        q = self.q_proj(x).reshape(b, t, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).reshape(b, t, self.kv, self.d).transpose(1, 2)
        v = self.v_proj(x).reshape(b, t, self.kv, self.d).transpose(1, 2)
        cos, sin = cos[:, None], sin[:, None]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past is not None:  # KV cache: keys (after RoPE) and values of earlier tokens, [B, KV, P, D]
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        rep = self.h // self.kv
        k = k[:, :, None].expand(-1, -1, rep, -1, -1).flatten(1, 2)
        v = v[:, :, None].expand(-1, -1, rep, -1, -1).flatten(1, 2)
        w = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        w = torch.tanh(w / self.softcap) * self.softcap
        w = w + (sliding_mask if self.is_sliding else global_mask)
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, t, self.h * self.d)
        return self.o_proj(o), present


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        hs, ff = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(hs, ff, bias=False)
        self.up_proj = nn.Linear(hs, ff, bias=False)
        self.down_proj = nn.Linear(ff, hs, bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c, layer_idx):
        super().__init__()
        hs, eps = c["hidden_size"], c["rms_norm_eps"]
        self.self_attn = Attention(c, layer_idx)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(hs, eps)
        self.post_attention_layernorm = RMSNorm(hs, eps)
        self.pre_feedforward_layernorm = RMSNorm(hs, eps)
        self.post_feedforward_layernorm = RMSNorm(hs, eps)

    def forward(self, x, cos, sin, global_mask, sliding_mask, past=None):
        r = x
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, global_mask, sliding_mask, past)
        x = r + self.post_attention_layernorm(a)
        r = x
        x = self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return r + x, present


class Gemma2Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(c, i) for i in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.rotary_emb = RotaryEmbedding(c["head_dim"], c["rope_theta"])

    def forward(self, input_ids, attention_mask, position_ids, hidden=None, past=None, presents=None):
        x = self.embed_tokens(input_ids)
        x = x * torch.tensor(self.c["hidden_size"] ** 0.5, dtype=x.dtype)  # scale cast to the dtype first, as HF does
        if hidden is not None:
            hidden.append(x)
        cos, sin = self.rotary_emb(position_ids)
        # Masks by sequence index (HF builds them from cache positions), keys also masked by attention_mask.
        # query i at absolute index past_len + i, key j at j in [0, past_len + T): attention_mask covers all keys
        kidx = torch.cumsum(torch.ones_like(attention_mask[0]), 0) - 1
        qidx = torch.cumsum(torch.ones_like(input_ids[0]), 0) - 1
        if past is not None:
            qidx = qidx + past[0][0].shape[2]
        qi, kj = qidx[:, None], kidx[None, :]
        causal = kj <= qi
        sliding = causal & (qi - kj < self.c["sliding_window"])
        keep = attention_mask[:, None, None, :] > 0
        neg = torch.tensor(torch.finfo(torch.float32).min, dtype=torch.float32)
        zero = torch.zeros((), dtype=torch.float32)
        global_mask = torch.where(causal[None, None] & keep, zero, neg)
        sliding_mask = torch.where(sliding[None, None] & keep, zero, neg)
        for i, layer in enumerate(self.layers):
            x, present = layer(x, cos, sin, global_mask, sliding_mask, None if past is None else past[i])
            if presents is not None:
                presents.extend(present)
            if hidden is not None:
                hidden.append(x)
        return self.norm(x)


class Gemma2ForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Gemma2Model(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied

    def forward(self, input_ids, attention_mask, position_ids):
        h = self.model(input_ids, attention_mask, position_ids)
        logits = self.lm_head(h)
        cap = self.c["final_logit_softcapping"]
        return torch.tanh(logits / cap) * cap


class Gemma2WithPast(nn.Module):
    """Optimum's "with past" signature: past_key_values.{l}.key/value in, present.{l}.key/value out."""

    def __init__(self, lm):
        super().__init__()
        self.model = lm.model
        self.lm_head = lm.lm_head
        self.c = lm.c

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        presents = []
        h = self.model(input_ids, attention_mask, position_ids, past=past, presents=presents)
        cap = self.c["final_logit_softcapping"]
        return (torch.tanh(self.lm_head(h) / cap) * cap, *presents)


def export_torch_with_past(m, c, path):
    L, KV, D = c["num_hidden_layers"], c["num_key_value_heads"], c["head_dim"]
    w = Gemma2WithPast(m).eval()
    ids = torch.tensor([[17, 99]], dtype=torch.int64)
    p = 3
    past = []
    g = torch.Generator().manual_seed(1)
    for _ in range(L):
        past += [torch.randn(1, KV, p, D, generator=g), torch.randn(1, KV, p, D, generator=g)]
    names_in = ["input_ids", "attention_mask", "position_ids"]
    names_out = ["logits"]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for l in range(L):
        for kind in ("key", "value"):
            names_in.append(f"past_key_values.{l}.{kind}")
            names_out.append(f"present.{l}.{kind}")
            axes[f"past_key_values.{l}.{kind}"] = {0: "batch_size", 2: "past_sequence_length"}
            axes[f"present.{l}.{kind}"] = {0: "batch_size", 2: "total_sequence_length"}
    torch.onnx.export(w, (ids, torch.ones(1, p + 2, dtype=torch.int64), torch.arange(p, p + 2)[None], *past), path,
                      input_names=names_in, output_names=names_out, dynamic_axes=axes, opset_version=17,
                      do_constant_folding=True)
    # the traced module must agree with the uncached module: prefix+token with cache == whole sequence without
    full = torch.tensor([[2, 17, 99, 5, 200]])
    with torch.no_grad():
        ref = m(full, torch.ones_like(full), torch.arange(5)[None])
        first = w(full[:, :3], torch.ones(1, 3, dtype=torch.int64), torch.arange(3)[None],
                  *[torch.zeros(1, KV, 0, D) for _ in range(2 * L)])
        second = w(full[:, 3:], torch.ones(1, 5, dtype=torch.int64), torch.arange(3, 5)[None], *first[1:])
    assert torch.allclose(ref[:, 3:], second[0], atol=1e-4), "KV-cache path differs from the full forward"
    return onnx.load(path)


def init_weights(m, c):
    g = torch.Generator().manual_seed(SEED)

    def rn(*shape, std):
        return torch.randn(*shape, generator=g) * std

    with torch.no_grad():
        m.model.embed_tokens.weight.copy_(rn(c["vocab_size"], c["hidden_size"], std=1.0))
        for name, p in m.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.copy_(rn(*p.shape, std=0.4))
            elif name.endswith("proj.weight"):
                fan_in = p.shape[1]
                std = 1.0 / math.sqrt(fan_in)
                if "q_proj" in name or "k_proj" in name:
                    std *= 2.5  # large attention logits, so the 50 soft-cap bites
                p.copy_(rn(*p.shape, std=std))
        m.model.norm.weight.add_(0.3)  # final logits around +-50, so the 30 soft-cap bites without saturating all


def state_numpy(m):
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in m.state_dict().items() if "rotary_emb" not in k}
    sd.pop("lm_head.weight", None)  # tied to model.embed_tokens.weight
    return sd


def export_torch(m, path):
    ids = torch.tensor([[2, 17, 99, 5, 200, 31, 64, 7, 150, 42]], dtype=torch.int64)
    torch.onnx.export(
        m, (ids, torch.ones_like(ids), torch.arange(ids.shape[1])[None]), path,
        input_names=["input_ids", "attention_mask", "position_ids"], output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                      "attention_mask": {0: "batch_size", 1: "sequence_length"},
                      "position_ids": {0: "batch_size", 1: "sequence_length"},
                      "logits": {0: "batch_size", 1: "sequence_length"}},
        opset_version=17, do_constant_folding=True)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    return model


def build_genai(c, sd):
    """Graph in the style of onnxruntime-genai's model builder (builders/base.py, builders/gemma.py).

    Deliberate deviations from the builder, both to follow Hugging Face's semantics exactly:
    sliding window on even layers (HF `is_sliding = not layer_idx % 2`; the builder's Gemma2Model.is_local marks odd
    layers) and the exact sqrt(d_model) embedding scale (the builder rounds it to 2 decimals).
    """
    L, hs, H, KV, D = c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c[
        "head_dim"]
    nodes, inits, vinfo = [], [], []
    f32 = TensorProto.FLOAT

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr.astype(np.float32)), name))
        return name

    def const_i64(name, vals):
        inits.append(numpy_helper.from_array(np.array(vals, dtype=np.int64), name))
        return name

    def node(op, ins, outs, name, domain=None, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=name, domain=domain, **attrs))
        return outs

    def value(name):
        vinfo.append(helper.make_tensor_value_info(name, f32, ["batch_size", "sequence_length", hs]))

    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "sequence_length", c["vocab_size"]])]
    for l in range(L):
        inputs.append(helper.make_tensor_value_info(f"past_key_values.{l}.key", f32,
                                                    ["batch_size", KV, "past_sequence_length", D]))
        inputs.append(helper.make_tensor_value_info(f"past_key_values.{l}.value", f32,
                                                    ["batch_size", KV, "past_sequence_length", D]))
        outputs.append(helper.make_tensor_value_info(f"present.{l}.key", f32,
                                                     ["batch_size", KV, "total_sequence_length", D]))
        outputs.append(helper.make_tensor_value_info(f"present.{l}.value", f32,
                                                     ["batch_size", KV, "total_sequence_length", D]))

    # seqlens_k = sum(attention_mask) - 1 (int32); total_sequence_length = attention_mask.shape[1] (int32 scalar)
    node("ReduceSum", ["attention_mask", const_i64("/model/constants/INT64/[1]", [1])], ["/model/attn_mask_reformat/attn_mask_subgraph/ReduceSum/output_0"],
         "/model/attn_mask_reformat/attn_mask_subgraph/ReduceSum", keepdims=0)
    node("Sub", ["/model/attn_mask_reformat/attn_mask_subgraph/ReduceSum/output_0", const_i64("/model/constants/INT64/1", 1)],
         ["/model/attn_mask_reformat/attn_mask_subgraph/Sub/output_0"], "/model/attn_mask_reformat/attn_mask_subgraph/Sub")
    node("Cast", ["/model/attn_mask_reformat/attn_mask_subgraph/Sub/output_0"], ["/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast/output_0"],
         "/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast", to=TensorProto.INT32)
    node("Shape", ["attention_mask"], ["/model/attn_mask_reformat/attn_mask_subgraph/Shape/output_0"], "/model/attn_mask_reformat/attn_mask_subgraph/Shape")
    node("Gather", ["/model/attn_mask_reformat/attn_mask_subgraph/Shape/output_0", const_i64("/model/constants/INT64/1", 1)],
         ["/model/attn_mask_reformat/attn_mask_subgraph/Gather/output_0"], "/model/attn_mask_reformat/attn_mask_subgraph/Gather", axis=0)
    node("Cast", ["/model/attn_mask_reformat/attn_mask_subgraph/Gather/output_0"], ["/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast/output_0"],
         "/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast", to=TensorProto.INT32)
    seqlens_k = "/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast/output_0"
    total_len = "/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast/output_0"
    inits_names = set()

    # RoPE caches [max_pos, D/2]
    inv_freq = 1.0 / (c["rope_theta"] ** (np.arange(0, D, 2, dtype=np.int64).astype(np.float32) / D))
    t = np.arange(c["max_position_embeddings"], dtype=np.float32)
    freqs = np.outer(t, inv_freq).astype(np.float32)
    init("cos_cache", np.cos(freqs))
    init("sin_cache", np.sin(freqs))

    # Embedding: tied weights stored once as lm_head.MatMul.weight [hs, V], Transpose + Gather, then Mul by sqrt(hs)
    init("lm_head.MatMul.weight", sd["model.embed_tokens.weight"].T)
    node("Transpose", ["lm_head.MatMul.weight"], ["/model/embed_tokens/Transpose/output_0"], "/model/embed_tokens/Transpose", perm=[1, 0])
    node("Gather", ["/model/embed_tokens/Transpose/output_0", "input_ids"], ["/model/embed_tokens/Gather/output_0"], "/model/embed_tokens/Gather")
    scale = np.array(np.float32(hs ** 0.5))
    inits.append(numpy_helper.from_array(scale, f"/model/constants/FLOAT/{float(scale)}"))
    node("Mul", ["/model/embed_tokens/Gather/output_0", f"/model/constants/FLOAT/{float(scale)}"], ["/model/embed_tokens/Mul/output_0"], "/model/embed_tokens/Mul")
    value("/model/embed_tokens/Mul/output_0")

    root = skip = "/model/embed_tokens/Mul/output_0"
    eps = c["rms_norm_eps"]

    def layernorm(l, location, w, is_skip, last=False):
        nonlocal root, skip
        weight = init(f"model.layers.{l}.{location}_layernorm.weight" if location != "final_norm" else "model.norm.weight", w + 1.0)
        base = f"/model/layers.{l}/{location}_layernorm" if location != "final_norm" else f"/model/layers.{l}/final_norm_layernorm"
        out0, out3 = f"{base}/output_0", f"{base}/output_3"
        if is_skip:
            outs = [out0] if last else [out0, "", "", out3]
            node("SkipSimplifiedLayerNormalization", [root, skip, weight], outs, f"{base}/SkipLayerNorm", domain="com.microsoft", epsilon=eps)
            if not last:
                value(out3)
                root = out3
        else:
            node("SimplifiedLayerNormalization", [root, weight], [out0], f"{base}/LayerNorm", axis=-1, epsilon=eps, stash_type=1)
        value(out0)
        return out0

    for l in range(L):
        p = f"model.layers.{l}."
        x = layernorm(l, "input", sd[p + "input_layernorm.weight"], is_skip=l > 0)
        a = f"/model/layers.{l}/attn"
        q = node("MatMul", [x, init(p + "self_attn.q_proj.weight.T", sd[p + "self_attn.q_proj.weight"].T)], [f"{a}/q_proj/MatMul/output_0"], f"{a}/q_proj/MatMul")[0]
        k = node("MatMul", [x, init(p + "self_attn.k_proj.weight.T", sd[p + "self_attn.k_proj.weight"].T)], [f"{a}/k_proj/MatMul/output_0"], f"{a}/k_proj/MatMul")[0]
        v = node("MatMul", [x, init(p + "self_attn.v_proj.weight.T", sd[p + "self_attn.v_proj.weight"].T)], [f"{a}/v_proj/MatMul/output_0"], f"{a}/v_proj/MatMul")[0]
        sliding = not (l % 2)
        # local_window_size = HF's sliding_window, as the builder passes it (checked against the reference forward)
        node("GroupQueryAttention",
             [q, k, v, f"past_key_values.{l}.key", f"past_key_values.{l}.value", seqlens_k, total_len, "cos_cache", "sin_cache"],
             [f"{a}/GroupQueryAttention/output_0", f"present.{l}.key", f"present.{l}.value"], f"{a}/GroupQueryAttention",
             domain="com.microsoft", num_heads=H, kv_num_heads=KV, scale=float(c["query_pre_attn_scalar"] ** -0.5),
             local_window_size=c["sliding_window"] if sliding else -1, softcap=float(c["attn_logit_softcapping"]),
             do_rotary=1, rotary_interleaved=0)
        o = node("MatMul", [f"{a}/GroupQueryAttention/output_0", init(p + "self_attn.o_proj.weight.T", sd[p + "self_attn.o_proj.weight"].T)],
                 [f"{a}/o_proj/MatMul/output_0"], f"{a}/o_proj/MatMul")[0]
        # post_attention_layernorm normalises the attention output (builder: root_input = skip_input = o_proj output)
        root_saved = root
        root = o
        attn_out = layernorm(l, "post_attention", sd[p + "post_attention_layernorm.weight"], is_skip=False)
        root, skip = root_saved, attn_out
        x = layernorm(l, "pre_feedforward", sd[p + "pre_feedforward_layernorm.weight"], is_skip=True)
        m = f"/model/layers.{l}/mlp"
        gate = node("MatMul", [x, init(p + "mlp.gate_proj.weight.T", sd[p + "mlp.gate_proj.weight"].T)], [f"{m}/gate_proj/MatMul/output_0"], f"{m}/gate_proj/MatMul")[0]
        up = node("MatMul", [x, init(p + "mlp.up_proj.weight.T", sd[p + "mlp.up_proj.weight"].T)], [f"{m}/up_proj/MatMul/output_0"], f"{m}/up_proj/MatMul")[0]
        act = node("FastGelu", [gate], [f"{m}/act_fn/FastGelu/output_0"], f"{m}/act_fn/FastGelu", domain="com.microsoft")[0]
        mul = node("Mul", [act, up], [f"{m}/Mul/output_0"], f"{m}/Mul")[0]
        down = node("MatMul", [mul, init(p + "mlp.down_proj.weight.T", sd[p + "mlp.down_proj.weight"].T)], [f"{m}/down_proj/MatMul/output_0"], f"{m}/down_proj/MatMul")[0]
        root_saved = root
        root = down
        mlp_out = layernorm(l, "post_feedforward", sd[p + "post_feedforward_layernorm.weight"], is_skip=False)
        root, skip = root_saved, mlp_out

    # final norm: SkipSimplifiedLayerNormalization with only output 0 (the builder's last_layernorm), so the last
    # residual sum is not a tensor of the graph until a hook asks for it
    h = layernorm(L, "final_norm", sd["model.norm.weight"], is_skip=True, last=True)
    lm = node("MatMul", [h, "lm_head.MatMul.weight"], ["/lm_head/MatMul/output_0"], "/lm_head/MatMul")[0]
    cap = float(c["final_logit_softcapping"])
    inits.append(numpy_helper.from_array(np.array(np.float32(cap)), f"/model/constants/FLOAT/{cap}"))
    node("Div", [lm, f"/model/constants/FLOAT/{cap}"], ["/lm_head/softcap/Div/output_0"], "/lm_head/softcap/Div")
    node("Tanh", ["/lm_head/softcap/Div/output_0"], ["/lm_head/softcap/Tanh/output_0"], "/lm_head/softcap/Tanh")
    node("Mul", ["/lm_head/softcap/Tanh/output_0", f"/model/constants/FLOAT/{cap}"], ["logits"], "/lm_head/softcap/Mul")

    # de-duplicate shared constant initializers
    seen, uniq = set(), []
    for t in inits:
        if t.name not in seen:
            seen.add(t.name)
            uniq.append(t)
    graph = helper.make_graph(nodes, "main_graph", inputs, outputs, uniq, value_info=vinfo)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="onnxruntime-genai-style (GemmaScope.NET fixture)")
    model.ir_version = 8
    # no onnx.checker here: SimplifiedLayerNormalization is an ONNX Runtime op registered in the default domain
    return model


def main():
    torch.manual_seed(SEED)
    c = CFG
    m = Gemma2ForCausalLM(c).eval()
    init_weights(m, c)
    sd = state_numpy(m)
    os.makedirs(OUT, exist_ok=True)
    for d in ("torch", "external", "genai"):
        os.makedirs(os.path.join(OUT, d), exist_ok=True)
    np.savez(os.path.join(OUT, "weights.npz"), **sd)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(c, f, indent=2)

    # probes: how hard the soft-caps bite, and a few logits for a smoke check
    ids = torch.tensor([[2, 17, 99, 5, 200, 31, 64, 7, 150, 42, 9, 3]], dtype=torch.int64)
    with torch.no_grad():
        logits = m(ids, torch.ones_like(ids), torch.arange(ids.shape[1])[None])
        h = m.model(ids, torch.ones_like(ids), torch.arange(ids.shape[1])[None])
        raw = m.lm_head(h)
    print("max |raw logit| (cap 30):", float(raw.abs().max()), file=sys.stderr)
    with open(os.path.join(OUT, "probe.json"), "w") as f:
        json.dump({"input_ids": ids[0].tolist(), "logits_last_first8": logits[0, -1, :8].tolist()}, f, indent=2)

    tpath = os.path.join(OUT, "torch", "model.onnx")
    model = export_torch(m, tpath)
    # The external-data copy is the "with past" export (Optimum's text-generation-with-past signature).
    data_path = os.path.join(OUT, "external", "model.onnx_data")
    if os.path.exists(data_path):
        os.remove(data_path)  # onnx appends external data to an existing file
    ext = export_torch_with_past(m, c, os.path.join(OUT, "external", "model.onnx"))
    onnx.save_model(ext, os.path.join(OUT, "external", "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=0)
    g = build_genai(c, sd)
    onnx.save_model(g, os.path.join(OUT, "genai", "model.onnx"))
    print("torch nodes:", len(model.graph.node), "genai nodes:", len(g.graph.node), file=sys.stderr)


if __name__ == "__main__":
    main()
