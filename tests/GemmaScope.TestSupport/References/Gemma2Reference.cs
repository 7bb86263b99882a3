using System.Text.Json;

namespace GemmaScope.TestSupport;

/// <summary>
/// Plain float64 Gemma 2 and Gemma 3 (text) forward for one unpadded sequence, written from the Gemma papers and Hugging
/// Face's configuration semantics (not from any ONNX graph). Gemma 3 differs only where config.json says so: layer_types
/// (or sliding_window_pattern), per-head q/k RMSNorm before RoPE, RoPE base rope_local_base_freq on sliding layers and
/// rope_theta with positions / rope_scaling.factor on global ones, no soft-caps. Gemma 2: embedding × √d_model; per layer
/// x += post_attn_norm(attn(input_norm(x))); x += post_ff_norm(mlp(pre_ff_norm(x))); final norm; tied unembedding;
/// logits soft-capped at 30. RMSNorm(x) = x / √(mean(x²) + eps) · (1 + w). Attention: RoPE (rotate-half, base 10000),
/// grouped-query heads, scores · query_pre_attn_scalar^-1/2, soft-capped at 50, causal, sliding window on even layers
/// (a query sees itself and the window − 1 tokens before it). MLP: down(gelu_tanh(gate(x)) · up(x)).
/// Records every hook tensor by TransformerLens name (ln1/ln2/ln_final hook_scale and hook_normalized, attn.hook_q/k/v
/// before RoPE, hook_rot_q/k, hook_attn_scores [T, heads × T] with −∞ where masked, hook_pattern, hook_z, …); an optional
/// edit callback may change a hook tensor in place, and the forward continues from the edited value (for intervention tests).
/// </summary>
public sealed class Gemma2Reference
{
    private readonly Dictionary<string, (int[] Shape, float[] Data)> _w;

    /// <param name="fixtureDir">Folder with weights.npz and config.json.</param>
    /// <param name="roundToBFloat16">Round every weight to bfloat16 (nearest even) first, as a bf16 checkpoint stores them.</param>
    public Gemma2Reference(string fixtureDir, bool roundToBFloat16 = false)
        : this(TestNpz.ReadFloat32(Path.Combine(fixtureDir, "weights.npz")), Path.Combine(fixtureDir, "config.json"))
    {
        if (roundToBFloat16)
        {
            foreach (var (_, v) in _w)
            {
                for (int i = 0; i < v.Data.Length; i++)
                {
                    // round to nearest even on the upper 16 bits, then back to float32 (exact)
                    uint u = BitConverter.SingleToUInt32Bits(v.Data[i]);
                    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
                    v.Data[i] = BitConverter.UInt32BitsToSingle(u);
                }
            }
        }
    }

    private Gemma2Reference(Dictionary<string, (int[] Shape, float[] Data)> weights, string configPath)
    {
        _w = weights;
        using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
        var c = doc.RootElement;
        ModelType = c.TryGetProperty("model_type", out var mt) ? mt.GetString()! : "gemma2";
        if (ModelType == "gemma3")
        {
            c = c.GetProperty("text_config"); // image-text checkpoint: the language model's config
        }

        bool gemma3 = ModelType is "gemma3" or "gemma3_text";
        Vocab = c.GetProperty("vocab_size").GetInt32();
        D = c.GetProperty("hidden_size").GetInt32();
        Ff = c.GetProperty("intermediate_size").GetInt32();
        Layers = c.GetProperty("num_hidden_layers").GetInt32();
        Heads = c.GetProperty("num_attention_heads").GetInt32();
        KvHeads = c.GetProperty("num_key_value_heads").GetInt32();
        HeadDim = c.GetProperty("head_dim").GetInt32();
        QueryPreAttnScalar = c.GetProperty("query_pre_attn_scalar").GetDouble();
        Eps = c.GetProperty("rms_norm_eps").GetDouble();

        AttnCap = c.TryGetProperty("attn_logit_softcapping", out var ac) && ac.ValueKind == JsonValueKind.Number ? ac.GetDouble() : null;
        FinalCap = c.TryGetProperty("final_logit_softcapping", out var fc) && fc.ValueKind == JsonValueKind.Number ? fc.GetDouble() : null;
        Window = c.GetProperty("sliding_window").GetInt32();
        QkNorm = gemma3;
        if (c.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object)
        {
            // transformers 5: Gemma 2 one dict {rope_theta, rope_type}; Gemma 3 one per layer type. Only "default" and
            // "linear" (positions / factor) are modelled here; sliding layers are taken unscaled.
            var full = gemma3 ? rp.GetProperty("full_attention") : rp;
            RopeTheta = full.GetProperty("rope_theta").GetDouble();
            RopeScale = full.GetProperty("rope_type").GetString() switch
            {
                "default" => 1.0,
                "linear" => full.GetProperty("factor").GetDouble(),
                var t => throw new NotSupportedException("rope_type " + t),
            };
            var local = gemma3 ? rp.GetProperty("sliding_attention") : rp;
            if (gemma3 && local.GetProperty("rope_type").GetString() != "default")
            {
                throw new NotSupportedException("scaled RoPE on sliding layers");
            }

            RopeLocalTheta = local.GetProperty("rope_theta").GetDouble();
        }
        else
        {
            // transformers 4: rope_theta (+ rope_local_base_freq and rope_scaling on Gemma 3)
            RopeTheta = c.GetProperty("rope_theta").GetDouble();
            RopeLocalTheta = gemma3 ? c.GetProperty("rope_local_base_freq").GetDouble() : RopeTheta;
            RopeScale = c.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object
                ? (rs.GetProperty("rope_type").GetString() == "linear" ? rs.GetProperty("factor").GetDouble() : throw new NotSupportedException("rope_scaling"))
                : 1.0;
        }

        Sliding = new bool[Layers];
        for (int l = 0; l < Layers; l++)
        {
            Sliding[l] = c.TryGetProperty("layer_types", out var lt)
                ? lt[l].GetString() == "sliding_attention"
                : gemma3 ? (l + 1) % c.GetProperty("sliding_window_pattern").GetInt32() != 0 : l % 2 == 0;
        }
    }

    /// <summary>
    /// From a Hugging Face checkpoint folder (config.json + an F32 or BF16 model.safetensors, read here with a minimal parser of
    /// its own); an image-text (gemma3) folder's text weights are read under their language_model prefix.
    /// </summary>
    public static Gemma2Reference FromCheckpoint(string folder)
    {
        var all = ReadSafeTensors(Path.Combine(folder, "model.safetensors"));
        var w = new Dictionary<string, (int[] Shape, float[] Data)>(StringComparer.Ordinal);
        foreach (var (name, v) in all)
        {
            string n = name.StartsWith("language_model.model.", StringComparison.Ordinal) ? "model." + name["language_model.model.".Length..]
                : name.StartsWith("model.language_model.", StringComparison.Ordinal) ? "model." + name["model.language_model.".Length..]
                : name;
            w[n] = v;
        }

        return new Gemma2Reference(w, Path.Combine(folder, "config.json"));
    }

    // safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets [begin, end)}}, then the data. F32 or BF16.
    private static Dictionary<string, (int[] Shape, float[] Data)> ReadSafeTensors(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var result = new Dictionary<string, (int[] Shape, float[] Data)>(StringComparer.Ordinal);
        foreach (var e in doc.RootElement.EnumerateObject())
        {
            if (e.Name == "__metadata__")
            {
                continue;
            }

            string dtype = e.Value.GetProperty("dtype").GetString()!;
            var shape = e.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var off = e.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            long at = 8 + n + off[0];
            float[] data;
            if (dtype == "F32")
            {
                data = new float[(off[1] - off[0]) / 4];
                Buffer.BlockCopy(bytes, (int)at, data, 0, data.Length * 4);
            }
            else if (dtype == "BF16")
            {
                // bfloat16 = the upper 16 bits of a float32: exact
                data = new float[(off[1] - off[0]) / 2];
                for (int i = 0; i < data.Length; i++)
                {
                    data[i] = BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(bytes, (int)at + (2 * i)) << 16);
                }
            }
            else
            {
                throw new NotSupportedException($"{path}: {e.Name} is {dtype}, not F32 or BF16");
            }

            result[e.Name] = (shape, data);
        }

        return result;
    }

    /// <summary><c>model_type</c> from config.json.</summary>
    public string ModelType { get; }

    /// <summary>Per layer: sliding-window (local) attention.</summary>
    public bool[] Sliding { get; }

    /// <summary>Gemma 3: RMSNorm (1 + w) of every q and k head over head_dim, before RoPE.</summary>
    public bool QkNorm { get; }

    /// <summary>RoPE base of sliding layers (Gemma 3: rope_local_base_freq; Gemma 2: rope_theta).</summary>
    public double RopeLocalTheta { get; }

    /// <summary>Linear rope_scaling factor (positions / factor) of global layers; 1 when none.</summary>
    public double RopeScale { get; }

    public int Vocab { get; }
    public int D { get; }
    public int Ff { get; }
    public int Layers { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public double QueryPreAttnScalar { get; }
    public double Eps { get; }
    public double RopeTheta { get; }
    public double? AttnCap { get; }
    public double? FinalCap { get; }
    public int Window { get; }

    public sealed record Output(double[] Logits, Dictionary<string, double[]> Hooks);

    /// <summary>Runs the forward; <paramref name="edit"/> (hook name, tensor [T × width]) may change a hook tensor in place.</summary>
    public Output Forward(int[] ids, Action<string, double[], int>? edit = null)
    {
        int t = ids.Length;
        var hooks = new Dictionary<string, double[]>(StringComparer.Ordinal);
        double[] Hook(string name, double[] x)
        {
            edit?.Invoke(name, x, t);
            hooks[name] = (double[])x.Clone();
            return x;
        }

        var emb = W("model.embed_tokens.weight");
        double scale = (float)Math.Sqrt(D); // HF casts the √d_model scale to the activation dtype (float32) first
        var x = new double[t * D];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j < D; j++)
            {
                x[(i * D) + j] = emb[(ids[i] * D) + j] * scale;
            }
        }

        x = Hook("hook_embed", x);
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            x = Hook($"blocks.{l}.hook_resid_pre", x);
            var h = Gain(Hook($"blocks.{l}.ln1.hook_normalized", Normalized(x, t, Hook($"blocks.{l}.ln1.hook_scale", Scale(x, t)))), t, W(p + "input_layernorm.weight"));
            var z = Hook($"blocks.{l}.attn.hook_z", Attention(h, t, l, Hook));
            var a = Hook($"blocks.{l}.hook_attn_out", RmsNorm(Linear(z, t, W(p + "self_attn.o_proj.weight"), Heads * HeadDim, D), t, W(p + "post_attention_layernorm.weight")));
            x = Hook($"blocks.{l}.hook_resid_mid", Add(x, a));
            // ln2.hook_scale: rms(x); ln2.hook_normalized: x / rms(x), before the (1 + w) gain (what Gemma Scope transcoders read)
            var n2 = Hook($"blocks.{l}.ln2.hook_normalized", Normalized(x, t, Hook($"blocks.{l}.ln2.hook_scale", Scale(x, t))));
            h = Hook($"blocks.{l}.hook_mlp_in", Gain(n2, t, W(p + "pre_feedforward_layernorm.weight")));
            var gate = Linear(h, t, W(p + "mlp.gate_proj.weight"), D, Ff);
            var up = Linear(h, t, W(p + "mlp.up_proj.weight"), D, Ff);
            for (int i = 0; i < gate.Length; i++)
            {
                double g = gate[i];
                gate[i] = 0.5 * g * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (g + (0.044715 * g * g * g)))) * up[i];
            }

            var m = Hook($"blocks.{l}.hook_mlp_out", RmsNorm(Linear(gate, t, W(p + "mlp.down_proj.weight"), Ff, D), t, W(p + "post_feedforward_layernorm.weight")));
            x = Hook($"blocks.{l}.hook_resid_post", Add(x, m));
        }

        var finalNormalized = Hook("ln_final.hook_normalized", Normalized(x, t, Hook("ln_final.hook_scale", Scale(x, t))));
        // the final norm's output with its gain is no TransformerLens hook; kept under its own name for reference.npz,
        // whose "ln_final/hook_normalized" (tools/onnx-fixtures/make_tiny_gemma3.py) holds this, not x / rms(x)
        var final = Hook("ln_final.output", Gain(finalNormalized, t, W("model.norm.weight")));
        var logits = Linear(final, t, emb, D, Vocab); // tied: lm_head.weight = embed_tokens.weight [V, D]
        if (FinalCap is { } cap)
        {
            for (int i = 0; i < logits.Length; i++)
            {
                logits[i] = Math.Tanh(logits[i] / cap) * cap;
            }
        }

        return new Output(logits, hooks);
    }

    public float[] W(string name) => _w.TryGetValue(name, out var v) ? v.Data : throw new KeyNotFoundException($"weights.npz has no '{name}'.");

    // Records attn.hook_q/k/v (after QK-norm, before RoPE), hook_rot_q/k, hook_attn_scores ([T, heads × T], −∞ where
    // masked) and hook_pattern ([T, heads × T], 0 where masked); edits to any of them flow into what follows.
    private double[] Attention(double[] h, int t, int layer, Func<string, double[], double[]> hook)
    {
        string p = $"model.layers.{layer}.self_attn.";
        string n = $"blocks.{layer}.attn.";
        int hd = HeadDim;
        var q = Linear(h, t, W(p + "q_proj.weight"), D, Heads * hd);
        var k = Linear(h, t, W(p + "k_proj.weight"), D, KvHeads * hd);
        var v = Linear(h, t, W(p + "v_proj.weight"), D, KvHeads * hd);
        bool sliding = Sliding[layer];
        if (QkNorm)
        {
            HeadNorm(q, W(p + "q_norm.weight"));
            HeadNorm(k, W(p + "k_norm.weight"));
        }

        q = hook(n + "hook_q", q);
        k = hook(n + "hook_k", k);
        v = hook(n + "hook_v", v);
        double theta = sliding ? RopeLocalTheta : RopeTheta, scale = sliding ? 1.0 : RopeScale;
        Rope(q, t, Heads, theta, scale);
        Rope(k, t, KvHeads, theta, scale);
        q = hook(n + "hook_rot_q", q);
        k = hook(n + "hook_rot_k", k);
        double scaling = 1 / Math.Sqrt(QueryPreAttnScalar);
        var scores = new double[t * Heads * t];
        for (int head = 0; head < Heads; head++)
        {
            int kv = head / (Heads / KvHeads);
            for (int i = 0; i < t; i++)
            {
                for (int j = 0; j < t; j++)
                {
                    bool allowed = j <= i && (!sliding || i - j < Window);
                    double dot = 0;
                    for (int d = 0; d < hd; d++)
                    {
                        dot += q[(i * Heads * hd) + (head * hd) + d] * k[(j * KvHeads * hd) + (kv * hd) + d];
                    }

                    scores[(((i * Heads) + head) * t) + j] = !allowed ? double.NegativeInfinity
                        : AttnCap is { } cap ? Math.Tanh(dot * scaling / cap) * cap : dot * scaling;
                }
            }
        }

        scores = hook(n + "hook_attn_scores", scores);
        var pattern = new double[scores.Length];
        for (int row = 0; row < t * Heads; row++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < t; j++)
            {
                max = Math.Max(max, scores[(row * t) + j]);
            }

            for (int j = 0; j < t; j++)
            {
                double s = scores[(row * t) + j];
                pattern[(row * t) + j] = double.IsNegativeInfinity(s) ? 0 : Math.Exp(s - max);
                sum += pattern[(row * t) + j];
            }

            for (int j = 0; j < t; j++)
            {
                pattern[(row * t) + j] /= sum;
            }
        }

        pattern = hook(n + "hook_pattern", pattern);
        var z = new double[t * Heads * hd];
        for (int head = 0; head < Heads; head++)
        {
            int kv = head / (Heads / KvHeads);
            for (int i = 0; i < t; i++)
            {
                for (int d = 0; d < hd; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < t; j++)
                    {
                        acc += pattern[(((i * Heads) + head) * t) + j] * v[(j * KvHeads * hd) + (kv * hd) + d];
                    }

                    z[(i * Heads * hd) + (head * hd) + d] = acc;
                }
            }
        }

        return z;
    }

    // rms(x) = √(mean(x²) + eps) per row ([T], the hook_scale of TransformerLens's RMSNorm).
    private double[] Scale(double[] x, int t)
    {
        var s = new double[t];
        for (int i = 0; i < t; i++)
        {
            double ms = 0;
            for (int j = 0; j < D; j++)
            {
                ms += x[(i * D) + j] * x[(i * D) + j];
            }

            s[i] = Math.Sqrt((ms / D) + Eps);
        }

        return s;
    }

    // x / scale per row (hook_normalized).
    private double[] Normalized(double[] x, int t, double[] scale)
    {
        var y = new double[x.Length];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j < D; j++)
            {
                y[(i * D) + j] = x[(i * D) + j] / scale[i];
            }
        }

        return y;
    }

    // n · (1 + w) per row.
    private double[] Gain(double[] n, int t, float[] w)
    {
        var y = new double[n.Length];
        for (int i = 0; i < t; i++)
        {
            for (int j = 0; j < D; j++)
            {
                y[(i * D) + j] = n[(i * D) + j] * (1.0 + w[j]);
            }
        }

        return y;
    }

    // RMSNorm (1 + w) over each head_dim-long slice (q_norm / k_norm).
    private void HeadNorm(double[] x, float[] w)
    {
        for (int o = 0; o < x.Length; o += HeadDim)
        {
            double ms = 0;
            for (int d = 0; d < HeadDim; d++)
            {
                ms += x[o + d] * x[o + d];
            }

            double inv = 1 / Math.Sqrt((ms / HeadDim) + Eps);
            for (int d = 0; d < HeadDim; d++)
            {
                x[o + d] *= inv * (1.0 + w[d]);
            }
        }
    }

    // Rotate-half RoPE at position i: (a, b) = (x[d], x[d + hd/2]) → (a cos θ − b sin θ, b cos θ + a sin θ), θ = (i / scale) / base^(2d/hd).
    private void Rope(double[] x, int t, int heads, double ropeBase, double scale)
    {
        int hd = HeadDim, half = hd / 2;
        for (int i = 0; i < t; i++)
        {
            for (int head = 0; head < heads; head++)
            {
                int o = (i * heads * hd) + (head * hd);
                for (int d = 0; d < half; d++)
                {
                    double theta = i / scale / Math.Pow(ropeBase, 2.0 * d / hd);
                    double c = Math.Cos(theta), sn = Math.Sin(theta);
                    double a = x[o + d], b = x[o + d + half];
                    x[o + d] = (a * c) - (b * sn);
                    x[o + d + half] = (b * c) + (a * sn);
                }
            }
        }
    }

    private double[] RmsNorm(double[] x, int t, float[] w)
    {
        var y = new double[x.Length];
        for (int i = 0; i < t; i++)
        {
            double ms = 0;
            for (int j = 0; j < D; j++)
            {
                ms += x[(i * D) + j] * x[(i * D) + j];
            }

            double inv = 1 / Math.Sqrt((ms / D) + Eps);
            for (int j = 0; j < D; j++)
            {
                y[(i * D) + j] = x[(i * D) + j] * inv * (1.0 + w[j]);
            }
        }

        return y;
    }

    // y[i, o] = Σ_k x[i, k] · w[o, k] (PyTorch Linear weight layout [out, in]).
    private static double[] Linear(double[] x, int t, float[] w, int inDim, int outDim)
    {
        var y = new double[t * outDim];
        for (int i = 0; i < t; i++)
        {
            for (int o = 0; o < outDim; o++)
            {
                double acc = 0;
                for (int k = 0; k < inDim; k++)
                {
                    acc += x[(i * inDim) + k] * w[(o * inDim) + k];
                }

                y[(i * outDim) + o] = acc;
            }
        }

        return y;
    }

    private static double[] Add(double[] a, double[] b)
    {
        var y = new double[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            y[i] = a[i] + b[i];
        }

        return y;
    }
}
