using System.Text.Json;

namespace GemmaScope.Tests.Reference;

/// <summary>
/// Plain float64 Gemma 2 forward for one unpadded sequence, written from the Gemma 2 paper and Hugging Face's
/// Gemma2 configuration semantics (not from any ONNX graph): embedding × √d_model; per layer
/// x += post_attn_norm(attn(input_norm(x))); x += post_ff_norm(mlp(pre_ff_norm(x))); final norm; tied unembedding;
/// logits soft-capped at 30. RMSNorm(x) = x / √(mean(x²) + eps) · (1 + w). Attention: RoPE (rotate-half, base 10000),
/// grouped-query heads, scores · query_pre_attn_scalar^-1/2, soft-capped at 50, causal, sliding window on even layers
/// (a query sees itself and the window − 1 tokens before it). MLP: down(gelu_tanh(gate(x)) · up(x)).
/// Records every hook tensor by TransformerLens name; an optional edit callback may change a hook tensor in place,
/// and the forward continues from the edited value (for intervention tests).
/// </summary>
internal sealed class Gemma2Reference
{
    private readonly Dictionary<string, (int[] Shape, float[] Data)> _w;

    /// <param name="fixtureDir">Folder with weights.npz and config.json.</param>
    /// <param name="roundToBFloat16">Round every weight to bfloat16 (nearest even) first, as a bf16 checkpoint stores them.</param>
    public Gemma2Reference(string fixtureDir, bool roundToBFloat16 = false)
    {
        _w = Npz.Read(Path.Combine(fixtureDir, "weights.npz"));
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

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixtureDir, "config.json")));
        var c = doc.RootElement;
        Vocab = c.GetProperty("vocab_size").GetInt32();
        D = c.GetProperty("hidden_size").GetInt32();
        Ff = c.GetProperty("intermediate_size").GetInt32();
        Layers = c.GetProperty("num_hidden_layers").GetInt32();
        Heads = c.GetProperty("num_attention_heads").GetInt32();
        KvHeads = c.GetProperty("num_key_value_heads").GetInt32();
        HeadDim = c.GetProperty("head_dim").GetInt32();
        QueryPreAttnScalar = c.GetProperty("query_pre_attn_scalar").GetDouble();
        Eps = c.GetProperty("rms_norm_eps").GetDouble();
        RopeTheta = c.GetProperty("rope_theta").GetDouble();
        AttnCap = c.GetProperty("attn_logit_softcapping").GetDouble();
        FinalCap = c.GetProperty("final_logit_softcapping").GetDouble();
        Window = c.GetProperty("sliding_window").GetInt32();
    }

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
    public double AttnCap { get; }
    public double FinalCap { get; }
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

        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            x = Hook($"blocks.{l}.hook_resid_pre", x);
            var h = RmsNorm(x, t, W(p + "input_layernorm.weight"));
            var z = Hook($"blocks.{l}.attn.hook_z", Attention(h, t, l));
            var a = Hook($"blocks.{l}.hook_attn_out", RmsNorm(Linear(z, t, W(p + "self_attn.o_proj.weight"), Heads * HeadDim, D), t, W(p + "post_attention_layernorm.weight")));
            x = Hook($"blocks.{l}.hook_resid_mid", Add(x, a));
            // ln2.hook_normalized: x / rms(x), before the (1 + w) gain (what Gemma Scope transcoders read)
            var zeros = new float[D];
            Hook($"blocks.{l}.ln2.hook_normalized", RmsNorm(x, t, zeros));
            h = RmsNorm(x, t, W(p + "pre_feedforward_layernorm.weight"));
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

        var final = Hook("ln_final.hook_normalized", RmsNorm(x, t, W("model.norm.weight")));
        var logits = Linear(final, t, emb, D, Vocab); // tied: lm_head.weight = embed_tokens.weight [V, D]
        for (int i = 0; i < logits.Length; i++)
        {
            logits[i] = Math.Tanh(logits[i] / FinalCap) * FinalCap;
        }

        return new Output(logits, hooks);
    }

    public float[] W(string name) => _w.TryGetValue(name, out var v) ? v.Data : throw new KeyNotFoundException($"weights.npz has no '{name}'.");

    private double[] Attention(double[] h, int t, int layer)
    {
        string p = $"model.layers.{layer}.self_attn.";
        int hd = HeadDim;
        var q = Linear(h, t, W(p + "q_proj.weight"), D, Heads * hd);
        var k = Linear(h, t, W(p + "k_proj.weight"), D, KvHeads * hd);
        var v = Linear(h, t, W(p + "v_proj.weight"), D, KvHeads * hd);
        Rope(q, t, Heads);
        Rope(k, t, KvHeads);
        bool sliding = layer % 2 == 0;
        double scaling = 1 / Math.Sqrt(QueryPreAttnScalar);
        var z = new double[t * Heads * hd];
        var s = new double[t];
        for (int head = 0; head < Heads; head++)
        {
            int kv = head / (Heads / KvHeads);
            for (int i = 0; i < t; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < t; j++)
                {
                    bool allowed = j <= i && (!sliding || i - j < Window);
                    if (!allowed)
                    {
                        s[j] = double.NegativeInfinity;
                        continue;
                    }

                    double dot = 0;
                    for (int d = 0; d < hd; d++)
                    {
                        dot += q[(i * Heads * hd) + (head * hd) + d] * k[(j * KvHeads * hd) + (kv * hd) + d];
                    }

                    s[j] = Math.Tanh(dot * scaling / AttnCap) * AttnCap;
                    max = Math.Max(max, s[j]);
                }

                double sum = 0;
                for (int j = 0; j < t; j++)
                {
                    s[j] = double.IsNegativeInfinity(s[j]) ? 0 : Math.Exp(s[j] - max);
                    sum += s[j];
                }

                for (int d = 0; d < hd; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < t; j++)
                    {
                        acc += s[j] / sum * v[(j * KvHeads * hd) + (kv * hd) + d];
                    }

                    z[(i * Heads * hd) + (head * hd) + d] = acc;
                }
            }
        }

        return z;
    }

    // Rotate-half RoPE at position i: (a, b) = (x[d], x[d + hd/2]) → (a cos θ − b sin θ, b cos θ + a sin θ), θ = i / base^(2d/hd).
    private void Rope(double[] x, int t, int heads)
    {
        int hd = HeadDim, half = hd / 2;
        for (int i = 0; i < t; i++)
        {
            for (int head = 0; head < heads; head++)
            {
                int o = (i * heads * hd) + (head * hd);
                for (int d = 0; d < half; d++)
                {
                    double theta = i / Math.Pow(RopeTheta, 2.0 * d / hd);
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
