"""Golden fixtures from the real Hugging Face transformers code (run where transformers 5 and torch are installed).

Writes tiny Gemma 2 and Gemma 3 checkpoints with `save_pretrained` (so config.json is exactly what transformers 5 writes:
`rope_parameters`, `dtype`, `layer_types`, ...), in float32 (single file and sharded) and bfloat16, plus float64
activations at every TransformerLens site, recorded with forward hooks on the transformers modules themselves, and the
logits. The C# tests compare the native and ONNX Runtime engines against these. Usage: python3 make_transformers_golden.py OUT
"""
import json, os, sys, traceback
import torch
import transformers
from safetensors.torch import save_file

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)
LOG = []


def log(*a):
    s = " ".join(str(x) for x in a)
    print(s, flush=True)
    LOG.append(s)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norm weights w (the norm computes x/rms * (1 + w))
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * 0.3)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * 0.5)
            else:
                fan_in = p.shape[1]
                scale = 2.5 if ("q_proj" in name or "k_proj" in name) else 1.0
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) * (scale / fan_in ** 0.5))


def rms_normalized(x, eps):
    x = x.double()
    scale = torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
    return x / scale, scale


def record(model, ids, eps, modname):
    """Runs one sequence (batch 1) in float64 and returns {hook name: [T, width] float64}."""
    acts = {}
    handles = []
    layers = model.model.layers

    def put(name, t, batched=True):
        t = t.detach().double()
        if batched:
            t = t[0]
        acts[name] = t.reshape(t.shape[0], -1).contiguous()

    def first(args, kwargs):
        return args[0] if args else kwargs["hidden_states"]

    for l, layer in enumerate(layers):
        def pre(mod, args, kwargs, l=l):
            put(f"blocks.{l}.hook_resid_pre", first(args, kwargs))
        def post(mod, args, kwargs, out, l=l):
            put(f"blocks.{l}.hook_resid_post", out[0] if isinstance(out, tuple) else out)
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(layer.register_forward_hook(post, with_kwargs=True))

        def ln1(mod, args, out, l=l):
            n, s = rms_normalized(args[0], eps)
            put(f"blocks.{l}.ln1.hook_normalized", n)
            put(f"blocks.{l}.ln1.hook_scale", s)
            put(f"blocks.{l}.ln1.output", out)
        handles.append(layer.input_layernorm.register_forward_hook(ln1))
        a = layer.self_attn
        handles.append(a.q_proj.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.attn.q_proj", o)))
        handles.append(a.k_proj.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.attn.k_proj", o)))
        handles.append(a.v_proj.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.attn.hook_v", o)))
        if getattr(a, "q_norm", None) is not None:
            handles.append(a.q_norm.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.attn.q_norm", o[0].transpose(0, 1), batched=False)))
            handles.append(a.k_norm.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.attn.k_norm", o[0].transpose(0, 1), batched=False)))
        handles.append(a.o_proj.register_forward_pre_hook(lambda m, i, l=l: put(f"blocks.{l}.attn.hook_z", i[0])))
        handles.append(layer.post_attention_layernorm.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.hook_attn_out", o)))

        def ln2(mod, args, out, l=l):
            put(f"blocks.{l}.hook_resid_mid", args[0])
            n, s = rms_normalized(args[0], eps)
            put(f"blocks.{l}.ln2.hook_normalized", n)
            put(f"blocks.{l}.ln2.hook_scale", s)
            put(f"blocks.{l}.hook_mlp_in", out)
        handles.append(layer.pre_feedforward_layernorm.register_forward_hook(ln2))
        handles.append(layer.post_feedforward_layernorm.register_forward_hook(lambda m, i, o, l=l: put(f"blocks.{l}.hook_mlp_out", o)))

    def lnf(mod, args, out):
        n, s = rms_normalized(args[0], eps)
        put("ln_final.hook_normalized", n)
        put("ln_final.hook_scale", s)
        put("ln_final.output", out)
    handles.append(model.model.norm.register_forward_hook(lnf))

    # Post-RoPE queries/keys and the attention pattern, from the eager attention function the modules call.
    mod = sys.modules[type(layers[0].self_attn).__module__]
    orig = mod.eager_attention_forward
    calls = []

    def wrapped(module, query, key, value, attention_mask, *args, **kwargs):
        out, weights = orig(module, query, key, value, attention_mask, *args, **kwargs)
        calls.append((query.detach(), key.detach(), weights.detach() if weights is not None else None))
        return out, weights
    mod.eager_attention_forward = wrapped
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits
    finally:
        mod.eager_attention_forward = orig
        for h in handles:
            h.remove()
    if len(calls) != len(layers):
        raise RuntimeError(f"{modname}: expected {len(layers)} eager attention calls, saw {len(calls)}")
    for l, (q, k, w) in enumerate(calls):
        put(f"blocks.{l}.attn.hook_rot_q", q[0].transpose(0, 1), batched=False)  # [T, heads, d]
        put(f"blocks.{l}.attn.hook_rot_k", k[0].transpose(0, 1), batched=False)
        if w is not None:
            put(f"blocks.{l}.attn.hook_pattern", w[0].transpose(0, 1), batched=False)  # [T, heads, Tk]
    put("logits", logits)
    return acts


def make(name, config, cls, seed, seqs, variants):
    log(f"== {name}")
    config._attn_implementation = "eager"
    model = cls(config)
    try:
        model.set_attn_implementation("eager")
    except Exception as e:  # older API
        log("set_attn_implementation:", e)
    model.eval()
    randomize(model, seed)
    folder = os.path.join(OUT, name)
    model.save_pretrained(os.path.join(folder, "fp32"), safe_serialization=True)
    model.save_pretrained(os.path.join(folder, "fp32-sharded"), safe_serialization=True, max_shard_size="200KB")
    bf = cls(config)
    bf.load_state_dict(model.state_dict())
    bf = bf.to(torch.bfloat16)
    bf.save_pretrained(os.path.join(folder, "bf16"), safe_serialization=True)
    eps = config.rms_norm_eps
    refs = {}
    for label, m in (("fp32", model), ("bf16", bf)):
        m64 = cls(config)
        m64.load_state_dict({k: v.float() for k, v in m.state_dict().items()})  # bf16 values are exact in fp32
        m64 = m64.double().eval()
        try:
            m64.set_attn_implementation("eager")
        except Exception:
            pass
        for si, ids in enumerate(seqs):
            for k, v in record(m64, ids, eps, name).items():
                refs[f"{label}.s{si}.{k}"] = v
        if label == "fp32":
            try:
                with torch.no_grad():
                    gen = m64.generate(torch.tensor([seqs[0]]), max_new_tokens=6, do_sample=False)
                refs["fp32.gen.s0"] = gen[0].to(torch.int64)
                log(f"{name}: greedy generation {gen[0].tolist()}")
            except Exception:
                log(traceback.format_exc())
        log(f"{name} {label}: {len(refs)} tensors so far")
    for si, ids in enumerate(seqs):
        refs[f"ids.s{si}"] = torch.tensor(ids, dtype=torch.int64)
    # Config variants on the same weights (e.g. another RoPE): the config as transformers 5 writes it, and float64 refs.
    for vname, vconfig in variants:
        vconfig._attn_implementation = "eager"
        vm = cls(vconfig)
        vm.load_state_dict(model.state_dict())
        vm = vm.double().eval()
        try:
            vm.set_attn_implementation("eager")
        except Exception:
            pass
        vconfig.save_pretrained(os.path.join(folder, vname))
        for si, ids in enumerate(seqs):
            for k, v in record(vm, ids, eps, name + "/" + vname).items():
                if k == "logits" or k.endswith("hook_resid_post"):
                    refs[f"{vname}.s{si}.{k}"] = v
    save_file({k: v.clone().contiguous() for k, v in refs.items()}, os.path.join(folder, "reference.safetensors"))
    log(f"{name}: wrote {len(refs)} reference tensors")


seqs2 = [[2, 17, 301, 44, 90, 5, 260, 133, 78, 9, 250, 11, 64], [2, 99, 4, 212, 37, 300]]
try:
    def g2(**kw):
        base = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24, sliding_window=5,
                    attn_logit_softcapping=50.0, final_logit_softcapping=30.0, max_position_embeddings=64,
                    pad_token_id=0, eos_token_id=1, bos_token_id=2, hidden_activation="gelu_pytorch_tanh")
        base.update(kw)
        return transformers.Gemma2Config(**base)
    try:
        c = g2(rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    except TypeError:
        log(traceback.format_exc())
        c = g2(rope_theta=10000.0)
    log("gemma2 config:", c.to_json_string())
    make("gemma2", c, transformers.Gemma2ForCausalLM, 1, seqs2,
         [("rope-theta-100", g2(rope_parameters={"rope_type": "default", "rope_theta": 100.0}))])
except Exception:
    log(traceback.format_exc())

try:
    types = ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"]
    def g3(rope, **kw):
        base = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=7, num_attention_heads=4,
                    num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=4, layer_types=types,
                    max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=2,
                    hidden_activation="gelu_pytorch_tanh", rope_parameters=rope)
        base.update(kw)
        return transformers.Gemma3TextConfig(**base)
    scaled = {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
              "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
    plain = {"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
    c3 = g3(scaled)
    log("gemma3 config:", c3.to_json_string())
    make("gemma3", c3, transformers.Gemma3ForCausalLM, 2, seqs2, [("rope-default", g3(plain))])
except Exception:
    log(traceback.format_exc())

with open(os.path.join(OUT, "README.md"), "w") as f:
    f.write("Made by tools/golden/make_transformers_golden.py with transformers %s, torch %s.\n\n" % (transformers.__version__, torch.__version__))
    f.write("reference.safetensors keys: '{fp32|bf16}.s{i}.{hook}' float64 [T, width] (bf16 = the bf16 weights in float64 arithmetic), "
            "'ids.s{i}', '{variant}.s{i}.{logits|blocks.L.hook_resid_post}' for config variants on the fp32 weights.\n"
            "Hooks are TransformerLens names; extra module outputs: attn.q_proj/k_proj (before QK-norm), attn.q_norm/k_norm (Gemma 3, before RoPE), "
            "ln1.output, ln_final.output; hook_rot_q/k and hook_pattern come from the eager attention function ([T, heads*d], [T, heads*Tk]).\n\n")
    f.write("\n".join(LOG))
