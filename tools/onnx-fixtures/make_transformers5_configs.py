#!/usr/bin/python3
"""Writes config.json files for the tiny checkpoints in the spelling transformers 5 uses, plus a Gemma 2 with a
non-default RoPE base in both spellings. Standard library only:  python3 tools/onnx-fixtures/make_transformers5_configs.py

transformers 5 (5.17 current) saves Gemma configs differently from the 4.x files on the hub (see
/work/shared/gemma-scope-facts.md, "Configs written by transformers 5"): `dtype` instead of `torch_dtype`, `layer_types`
always written, RoPE only in `rope_parameters` (Gemma 2 one dict, Gemma 3 one per layer type), no top-level `rope_theta`,
`rope_local_base_freq` or `rope_scaling`, and new `use_bidirectional_attention` and `_sliding_window_pattern`.
The conversion below follows those rules; the weights are the existing fixtures' (tests copy them next to these configs).
Outputs under tests/GemmaScope.Onnx.Tests/Fixtures/transformers5/:
  gemma3-text/config.json         tiny-gemma3/text in 5.x spelling (linear x8 on full_attention layers)
  gemma3-multimodal/config.json   tiny-gemma3/multimodal in 5.x spelling (text_config converted)
  gemma2/config.json              tiny-gemma2-hf/single in 5.x spelling (default RoPE)
  gemma2-theta500-v4/config.json  tiny-gemma2-hf/single with rope_theta 500 (4.x spelling)
  gemma2-theta500-v5/config.json  the same in 5.x spelling
"""
import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures")
OUT = os.path.join(FIX, "transformers5")
VERSION = "5.17.0"


def gemma2_v5(c4):
    c = copy.deepcopy(c4)
    n = c["num_hidden_layers"]
    c["rope_parameters"] = {"rope_theta": c.pop("rope_theta"), "rope_type": "default"}
    c["dtype"] = c.pop("torch_dtype")
    c["layer_types"] = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    c["use_bidirectional_attention"] = None
    c.pop("cache_implementation", None)  # no longer a Gemma2Config field
    c["transformers_version"] = VERSION
    return dict(sorted(c.items()))


def gemma3_text_v5(c4):
    c = copy.deepcopy(c4)
    scaling = c.pop("rope_scaling", None)
    full = {"rope_type": "default", "rope_theta": c.pop("rope_theta")}
    if scaling:
        full = {"rope_type": scaling["rope_type"], "factor": scaling["factor"], "rope_theta": full["rope_theta"]}
    c["rope_parameters"] = {
        "full_attention": full,
        "sliding_attention": {"rope_type": "default", "rope_theta": c.pop("rope_local_base_freq")},
    }
    c["_sliding_window_pattern"] = c.pop("sliding_window_pattern")
    c["use_bidirectional_attention"] = False
    if "torch_dtype" in c:
        c["dtype"] = c.pop("torch_dtype")
    c.pop("cache_implementation", None)
    if "transformers_version" in c:
        c["transformers_version"] = VERSION
    return dict(sorted(c.items()))


def read(*p):
    with open(os.path.join(FIX, *p)) as f:
        return json.load(f)


def write(name, c):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")


def main():
    write("gemma3-text", gemma3_text_v5(read("tiny-gemma3", "text", "config.json")))
    mm = read("tiny-gemma3", "multimodal", "config.json")
    mm["text_config"] = gemma3_text_v5(mm["text_config"])
    if "torch_dtype" in mm:
        mm["dtype"] = mm.pop("torch_dtype")
    mm["transformers_version"] = VERSION
    write("gemma3-multimodal", mm)
    g2 = read("tiny-gemma2-hf", "single", "config.json")
    write("gemma2", gemma2_v5(g2))
    t4 = dict(g2, rope_theta=500.0)
    write("gemma2-theta500-v4", t4)
    write("gemma2-theta500-v5", gemma2_v5(t4))


if __name__ == "__main__":
    main()
