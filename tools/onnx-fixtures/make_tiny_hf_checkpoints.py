#!/usr/bin/python3
"""Writes the tiny Gemma 2 in Hugging Face's checkpoint layout, for GemmaModel.FromPretrained tests and the quickstart.

Run with Debian's python (numpy only):  /usr/bin/python3 tools/onnx-fixtures/make_tiny_hf_checkpoints.py
Reads the SAME weights as the ONNX fixtures (tests/GemmaScope.Onnx.Tests/Fixtures/tiny-gemma2/weights.npz, written by
make_tiny_gemma2.py) and writes tests/GemmaScope.Onnx.Tests/Fixtures/tiny-gemma2-hf/:
  single/   config.json, model.safetensors (float32), tokenizer.model
  sharded/  config.json, model.safetensors.index.json, model-0000{1,2,3}-of-00003.safetensors (float32; layer 1 is split
            between shards 1 and 2, as real shards split inside a layer), tokenizer.model
  bf16/     config.json (torch_dtype bfloat16), model.safetensors (bfloat16, rounded to nearest even), tokenizer.model
The safetensors files are written by hand (8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, then the data), so no safetensors/torch install is needed.
"""
import json
import os
import shutil
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2")
OUT = os.path.join(HERE, "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2-hf")


def hf_config(c, dtype):
    # The fields of google/gemma-2-2b's config.json, with the tiny sizes.
    return {
        "architectures": ["Gemma2ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": c["attn_logit_softcapping"],
        "bos_token_id": c["bos_token_id"],
        "cache_implementation": "hybrid",
        "eos_token_id": c["eos_token_id"],
        "final_logit_softcapping": c["final_logit_softcapping"],
        "head_dim": c["head_dim"],
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": c["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": c["intermediate_size"],
        "max_position_embeddings": c["max_position_embeddings"],
        "model_type": "gemma2",
        "num_attention_heads": c["num_attention_heads"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_key_value_heads": c["num_key_value_heads"],
        "pad_token_id": c["pad_token_id"],
        "query_pre_attn_scalar": c["query_pre_attn_scalar"],
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_theta": c["rope_theta"],
        "sliding_window": c["sliding_window"],
        "tie_word_embeddings": True,
        "torch_dtype": dtype,
        "transformers_version": "4.42.4",
        "use_cache": True,
        "vocab_size": c["vocab_size"],
    }


def to_bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch's .to(torch.bfloat16))."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype 'F32'|'BF16', shape, bytes)."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data)
    return offset


def ordered_names(sd, layers):
    # Hugging Face's order: embedding, then each layer's tensors, then the final norm.
    names = ["model.embed_tokens.weight"]
    for l in range(layers):
        names += sorted(k for k in sd if k.startswith(f"model.layers.{l}."))
    names.append("model.norm.weight")
    assert sorted(names) == sorted(sd), "unexpected tensors in weights.npz"
    return names


def f32(sd, n):
    a = np.ascontiguousarray(sd[n], dtype="<f4")
    return (n, "F32", a.shape, a.tobytes())


def folder(name, c, dtype):
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf_config(c, dtype), f, indent=2)
        f.write("\n")
    shutil.copy(os.path.join(SRC, "tokenizer.model"), os.path.join(d, "tokenizer.model"))
    return d


def main():
    with open(os.path.join(SRC, "config.json")) as f:
        c = json.load(f)
    npz = np.load(os.path.join(SRC, "weights.npz"))
    sd = {k: npz[k] for k in npz.files}
    names = ordered_names(sd, c["num_hidden_layers"])
    meta = {"format": "pt"}

    d = folder("single", c, "float32")
    write_safetensors(os.path.join(d, "model.safetensors"), [f32(sd, n) for n in names], meta)

    d = folder("bf16", c, "bfloat16")
    write_safetensors(os.path.join(d, "model.safetensors"),
                      [(n, "BF16", sd[n].shape, to_bf16_bits(sd[n]).astype("<u2").tobytes()) for n in names], meta)

    # Sharded: split inside layer 1 (its attention in shard 1, its MLP and norms in shard 2) and inside layer 3.
    d = folder("sharded", c, "float32")
    split1 = next(i for i, n in enumerate(names) if n.startswith("model.layers.1.mlp."))
    split2 = next(i for i, n in enumerate(names) if n.startswith("model.layers.3.mlp."))
    parts = [names[:split1], names[split1:split2], names[split2:]]
    weight_map, total = {}, 0
    for i, part in enumerate(parts):
        shard = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        total += write_safetensors(os.path.join(d, shard), [f32(sd, n) for n in part], meta)
        for n in part:
            weight_map[n] = shard
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
