"""Times transformers (PyTorch, CPU) and our native engine on the same gemma-2-2b-shaped checkpoint, same ids and threads.

Run on the lent machine (transformers 5 + torch installed): writes a 26-layer gemma-2-2b-shaped checkpoint with random
weights by save_pretrained (fp32 and bf16), times transformers' prefill and KV-cache decode in fp32 and bf16, runs the
self-contained engine runner (benchmarks/GemmaScope.Engine.Runner, published) on both checkpoints, and compares
blocks.13.hook_resid_post and the last logits. Usage: python3 torch_vs_engine.py RUNNER OUT THREADS
"""
import json, os, subprocess, sys, time
import numpy as np
import torch
import transformers

runner, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
layers = int(os.environ.get("LAYERS", "26"))
os.makedirs(out, exist_ok=True)
torch.set_num_threads(threads)
res = {"transformers": transformers.__version__, "torch": torch.__version__, "threads": threads, "layers": layers}
try:
    res["cpu"] = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
except Exception:
    pass


def log(k, v):
    res[k] = v
    print(k, v, flush=True)


cfg = transformers.Gemma2Config(vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=layers,
                                num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                                sliding_window=4096, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                                max_position_embeddings=8192, pad_token_id=0, eos_token_id=1, bos_token_id=2)
cfg._attn_implementation = "eager"
t = time.time()
torch.manual_seed(0)
model = transformers.Gemma2ForCausalLM(cfg).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() == 1:
            p.uniform_(-0.1, 0.1)
        else:
            a = (3.0 / p.shape[1]) ** 0.5  # U(-a, a): std 1/sqrt(fan_in)
            p.uniform_(-a, a)
log("init_s", round(time.time() - t, 1))
t = time.time()
model.save_pretrained("/tmp/g2b-fp32")
log("save_s", round(time.time() - t, 1))
g = torch.Generator().manual_seed(1)
ids = [2] + torch.randint(4, 256000, (127,), generator=g).tolist()
open(os.path.join(out, "ids.txt"), "w").write("\n".join(map(str, ids)))
mid = layers // 2


def torch_side(m, label):
    cap = {}
    h = m.model.layers[mid].register_forward_hook(lambda mod, a, o: cap.__setitem__("r", (o[0] if isinstance(o, tuple) else o).detach()))
    x = torch.tensor([ids])
    times = []
    with torch.no_grad():
        for i in range(4):
            t0 = time.time()
            lg = m(input_ids=x, use_cache=False).logits
            times.append(time.time() - t0)
    h.remove()
    times = sorted(times[1:])
    log(f"torch_{label}_prefill_ms_min", round(times[0] * 1000, 1))
    log(f"torch_{label}_prefill_ms_median", round(times[1] * 1000, 1))
    np.asarray(cap["r"][0].float().numpy(), dtype=np.float32).tofile(os.path.join(out, f"torch_{label}_resid.f32"))
    np.asarray(lg[0, -1].float().numpy(), dtype=np.float32).tofile(os.path.join(out, f"torch_{label}_logits.f32"))
    # Decode with the KV cache, greedy, 8 steps after the prompt.
    with torch.no_grad():
        o = m(input_ids=x, use_cache=True)
        past, nxt = o.past_key_values, int(o.logits[0, -1].argmax())
        steps = []
        for i in range(8):
            t0 = time.time()
            o = m(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            steps.append(time.time() - t0)
            past, nxt = o.past_key_values, int(o.logits[0, -1].argmax())
    steps.sort()
    log(f"torch_{label}_decode_ms_median", round(steps[len(steps) // 2] * 1000, 1))


torch_side(model, "fp32")
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
log("torch_fp32_vmhwm", peak[0].strip() if peak else "")
model = model.to(torch.bfloat16)
model.save_pretrained("/tmp/g2b-bf16")
torch_side(model, "bf16")
del model

for label in ("fp32", "bf16"):
    p = subprocess.run([runner, f"/tmp/g2b-{label}", str(threads), os.path.join(out, "ids.txt"), "8", os.path.join(out, "ours_" + label), str(mid)],
                       capture_output=True, text=True, timeout=400)
    print(p.stdout, p.stderr[-3000:], flush=True)
    try:
        res["ours_" + label] = json.loads(p.stdout.strip().splitlines()[-1])
    except Exception as e:
        res["ours_" + label] = {"error": str(e), "stderr": p.stderr[-2000:]}
        continue
    for what, ours_file, theirs in (("resid", f"resid_post_{mid}.f32", f"torch_{label}_resid.f32"), ("logits", "logits_last.f32", f"torch_{label}_logits.f32")):
        a = np.fromfile(os.path.join(out, "ours_" + label, ours_file), dtype=np.float32).astype(np.float64)
        b = np.fromfile(os.path.join(out, theirs), dtype=np.float32).astype(np.float64)
        if a.shape != b.shape:
            log(f"cmp_{label}_{what}", f"shape {a.shape} vs {b.shape}")
            continue
        if what == "resid":
            a = a.reshape(len(ids), -1); b = b.reshape(len(ids), -1)
            rel = float(np.max(np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)))
        else:
            rel = float(np.abs(a - b).max() / np.abs(b).max())
            log(f"cmp_{label}_top10_same", bool(set(np.argsort(-a)[:10]) == set(np.argsort(-b)[:10])))
        log(f"cmp_{label}_{what}_max_rel_to_row_max", rel)

json.dump(res, open(os.path.join(out, "result.json"), "w"), indent=1)
print(json.dumps(res, indent=1))
