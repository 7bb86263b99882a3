#!/usr/bin/python3
"""Writes tiny Gemma 3 checkpoints in Hugging Face's layout, with reference activations from an independent PyTorch forward.

Run with Debian's python (torch 1.13, numpy):  /usr/bin/python3 tools/onnx-fixtures/make_tiny_gemma3.py
Outputs go to tests/GemmaScope.Onnx.Tests/Fixtures/tiny-gemma3/:
  text/        config.json (model_type gemma3_text, layer_types with 5 sliding : 1 full, rope_scaling linear x8),
               model.safetensors (float32, HF names incl. self_attn.q_norm / k_norm), tokenizer.model
  multimodal/  config.json (model_type gemma3, the text config under text_config), model.safetensors with the text weights
               under language_model.model.* and a small vision tower tensor that a text-only loader must skip
  reference.npz  for the probe ids: logits and every hook of every layer (TransformerLens names, '/' for '.'), float64
  probe.json   the probe ids

The module follows Hugging Face's Gemma3ForCausalLM semantics, written from scratch here (no transformers install):
embedding x sqrt(d) (scale cast to the weight dtype), RMSNorm x / sqrt(mean(x^2) + eps) * (1 + w) in float32,
per layer x += post_attn_norm(attn(input_norm(x))); x += post_ff_norm(down(gelu_tanh(gate(h)) * up(h))), h = pre_ff_norm(x);
attention: q/k projected, RMSNorm per head over head_dim (q_norm, k_norm, (1 + w)), then rotate-half RoPE with base
rope_local_base_freq on sliding layers and rope_theta (positions / rope_scaling.factor, 'linear') on full layers, GQA,
scores * query_pre_attn_scalar^-0.5, no soft-caps, causal, sliding layers see the window - 1 tokens before the query;
final norm, tied unembedding, no final soft-cap.
Hooks: hook_embed (the scaled embedding, = blocks.0.hook_resid_pre), blocks.{l}.hook_resid_pre; attn.hook_z (input of o_proj), hook_attn_out
(after post_attention_layernorm), hook_resid_mid, ln2.hook_normalized (pre_feedforward_layernorm before its gain),
hook_mlp_in (after the gain), hook_mlp_out (after post_feedforward_layernorm), hook_resid_post;
ln_final.hook_normalized (final norm output).
"""
import json
import math
import os
import shutil
import struct

import numpy as np
import torch

CFG = dict(
    vocab_size=256,
    hidden_size=40,
    intermediate_size=72,
    num_hidden_layers=7,  # layers 0-4 sliding, 5 full, 6 sliding: both kinds, and a sliding layer after a full one
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,  # heads * head_dim = 64 != hidden_size
    query_pre_attn_scalar=20,  # != head_dim on purpose
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    rope_local_base_freq=10000.0,
    rope_scaling={"factor": 8.0, "rope_type": "linear"},
    sliding_window=4,  # shorter than the probe, so it matters
    max_position_embeddings=64,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)
LAYER_TYPES = ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"]
PROBE = [2, 17, 99, 5, 200, 31, 31, 64, 128, 7, 250, 3, 42, 11]
SEED = 20251201
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma3")
TOKENIZER = os.path.join(HERE, "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2", "tokenizer.model")


def weights(rng):
    c = CFG
    d, ff, hd, h, kv, v = c["hidden_size"], c["intermediate_size"], c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"], c["vocab_size"]
    w = {"model.embed_tokens.weight": rng.standard_normal((v, d)) * 0.5, "model.norm.weight": rng.standard_normal(d) * 0.3}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]:
            w[p + n + ".weight"] = rng.standard_normal(d) * 0.3
        w[p + "self_attn.q_proj.weight"] = rng.standard_normal((h * hd, d)) / math.sqrt(d)
        w[p + "self_attn.k_proj.weight"] = rng.standard_normal((kv * hd, d)) / math.sqrt(d)
        w[p + "self_attn.v_proj.weight"] = rng.standard_normal((kv * hd, d)) / math.sqrt(d)
        w[p + "self_attn.o_proj.weight"] = rng.standard_normal((d, h * hd)) / math.sqrt(h * hd)
        w[p + "self_attn.q_norm.weight"] = rng.standard_normal(hd) * 0.3
        w[p + "self_attn.k_norm.weight"] = rng.standard_normal(hd) * 0.3
        w[p + "mlp.gate_proj.weight"] = rng.standard_normal((ff, d)) / math.sqrt(d)
        w[p + "mlp.up_proj.weight"] = rng.standard_normal((ff, d)) / math.sqrt(d)
        w[p + "mlp.down_proj.weight"] = rng.standard_normal((d, ff)) / math.sqrt(ff)
    # Stored as float32, as the checkpoint holds them; the reference computes in float64 from these float32 values.
    return {k: np.asarray(a, dtype=np.float32) for k, a in w.items()}


def rms(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * (1.0 + w)


def rope(x, base, scale):
    # x [T, heads, hd]; rotate-half; theta_{t,i} = (t / scale) / base^(2i/hd)
    t, _, hd = x.shape
    inv = 1.0 / (base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = (torch.arange(t, dtype=torch.float64)[:, None] / scale) * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def forward(w, ids):
    c = CFG
    W = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
    d, hd, h, kv, eps = c["hidden_size"], c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"], c["rms_norm_eps"]
    t = len(ids)
    hooks = {}
    scale = float(np.float32(math.sqrt(d)))
    x = W["model.embed_tokens.weight"][ids] * scale
    hooks["hook_embed"] = x.clone()  # after the sqrt(d) scale, as SAELens's embedding SAEs read it
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        hooks[f"blocks.{l}.hook_resid_pre"] = x.clone()
        hn = rms(x, W[p + "input_layernorm.weight"], eps)
        q = (hn @ W[p + "self_attn.q_proj.weight"].T).view(t, h, hd)
        k = (hn @ W[p + "self_attn.k_proj.weight"].T).view(t, kv, hd)
        v = (hn @ W[p + "self_attn.v_proj.weight"].T).view(t, kv, hd)
        q = rms(q, W[p + "self_attn.q_norm.weight"], eps)
        k = rms(k, W[p + "self_attn.k_norm.weight"], eps)
        sliding = LAYER_TYPES[l] == "sliding_attention"
        if sliding:
            q, k = rope(q, c["rope_local_base_freq"], 1.0), rope(k, c["rope_local_base_freq"], 1.0)
        else:
            f = c["rope_scaling"]["factor"]
            q, k = rope(q, c["rope_theta"], f), rope(k, c["rope_theta"], f)
        k = k.repeat_interleave(h // kv, dim=1)
        v = v.repeat_interleave(h // kv, dim=1)
        s = torch.einsum("ihd,jhd->hij", q, k) * c["query_pre_attn_scalar"] ** -0.5
        i_idx = torch.arange(t)[:, None]
        j_idx = torch.arange(t)[None, :]
        allowed = j_idx <= i_idx
        if sliding:
            allowed = allowed & (i_idx - j_idx < c["sliding_window"])
        s = s.masked_fill(~allowed[None], float("-inf"))
        a = torch.softmax(s, -1)
        z = torch.einsum("hij,jhd->ihd", a, v).reshape(t, h * hd)
        hooks[f"blocks.{l}.attn.hook_z"] = z.clone()
        ao = rms(z @ W[p + "self_attn.o_proj.weight"].T, W[p + "post_attention_layernorm.weight"], eps)
        hooks[f"blocks.{l}.hook_attn_out"] = ao.clone()
        x = x + ao
        hooks[f"blocks.{l}.hook_resid_mid"] = x.clone()
        normalized = x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
        hooks[f"blocks.{l}.ln2.hook_normalized"] = normalized.clone()
        m_in = normalized * (1.0 + W[p + "pre_feedforward_layernorm.weight"])
        hooks[f"blocks.{l}.hook_mlp_in"] = m_in.clone()
        g = m_in @ W[p + "mlp.gate_proj.weight"].T
        u = m_in @ W[p + "mlp.up_proj.weight"].T
        act = 0.5 * g * (1 + torch.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        mo = rms((act * u) @ W[p + "mlp.down_proj.weight"].T, W[p + "post_feedforward_layernorm.weight"], eps)
        hooks[f"blocks.{l}.hook_mlp_out"] = mo.clone()
        x = x + mo
        hooks[f"blocks.{l}.hook_resid_post"] = x.clone()
    fin = rms(x, W["model.norm.weight"], eps)
    hooks["ln_final.hook_normalized"] = fin.clone()
    logits = fin @ W["model.embed_tokens.weight"].T
    return logits, hooks


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def text_config():
    c = dict(CFG)
    c.update({
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "hidden_activation": "gelu_pytorch_tanh",
        "layer_types": LAYER_TYPES,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "transformers_version": "4.53.0",
        "use_cache": True,
    })
    return c


def main():
    torch.manual_seed(SEED)
    w = weights(np.random.default_rng(SEED))
    logits, hooks = forward(w, PROBE)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "text"))
    os.makedirs(os.path.join(OUT, "multimodal"))
    names = sorted(w)
    write_safetensors(os.path.join(OUT, "text", "model.safetensors"), [(n, w[n]) for n in names])
    with open(os.path.join(OUT, "text", "config.json"), "w") as f:
        json.dump(text_config(), f, indent=2)
    shutil.copy(TOKENIZER, os.path.join(OUT, "text", "tokenizer.model"))

    # gemma3 (image-text) layout: text weights under language_model.model.*, plus a vision tensor to skip.
    vision = np.random.default_rng(SEED + 1).standard_normal((8, 3, 2, 2)).astype(np.float32)
    mm = [("language_model." + n, w[n]) for n in names] + [("vision_tower.vision_model.embeddings.patch_embedding.weight", vision)]
    write_safetensors(os.path.join(OUT, "multimodal", "model.safetensors"), mm)
    tc = text_config()
    for k in ["architectures", "torch_dtype", "transformers_version"]:
        tc.pop(k)
    with open(os.path.join(OUT, "multimodal", "config.json"), "w") as f:
        json.dump({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": tc,
                   "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 8}, "torch_dtype": "float32",
                   "transformers_version": "4.53.0"}, f, indent=2)
    shutil.copy(TOKENIZER, os.path.join(OUT, "multimodal", "tokenizer.model"))

    ref = {k.replace(".", "/"): v.numpy() for k, v in hooks.items()}
    ref["logits"] = logits.numpy()
    np.savez(os.path.join(OUT, "reference.npz"), **ref)
    with open(os.path.join(OUT, "probe.json"), "w") as f:
        json.dump({"ids": PROBE}, f)
    print("wrote", OUT, "hooks:", len(hooks), "logits", tuple(logits.shape))


if __name__ == "__main__":
    main()
