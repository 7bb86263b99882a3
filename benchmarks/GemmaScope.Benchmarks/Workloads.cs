using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Random SAE weights of Gemma Scope shapes, and the SAEs and ORT sessions built from them, cached for the process so
/// BenchmarkDotNet's per-case setup does not regenerate hundreds of MB (benchmarks run in process).
/// Weights: W ~ U(−1, 1)/√d_in, b_enc ~ U(−0.1, 0.1), θ ~ U(0.75, 1), x ~ U(−1, 1): pre-activations have σ ≈ 1/3, so
/// about 0.4 % of latents fire (L0 ≈ 70 at 16k, as in Gemma Scope).
/// </summary>
internal static class Workloads
{
    public const int DIn = 2304;

    /// <summary>d_in of the shape benchmarked at this width: Gemma 2 9B (3584) for the 131k SAEs, Gemma 2 2B (2304) otherwise.</summary>
    public static int DInFor(int dSae) => dSae >= 131072 ? 3584 : DIn;

    private static readonly Dictionary<string, object> Cache = [];

    public sealed record Weights(int DSae, float[] WEnc, float[] WDec, float[] BEnc, float[] BDec, float[] Threshold);

    public static Weights Get(int dSae) => Cached($"w{dSae}", () =>
    {
        var rng = new Random(1234 + dSae);
        int dIn = DInFor(dSae);
        float s = 1f / MathF.Sqrt(dIn);
        var th = new float[dSae];
        for (int j = 0; j < dSae; j++)
        {
            th[j] = 0.75f + (0.25f * rng.NextSingle());
        }

        var wEnc = Fill(rng, (long)dIn * dSae, s);

        // At 3584 × 131072 each matrix is 1.9 GB: encode benchmarks never read W_dec, so it shares W_enc's values
        // (same element count) instead of taking another 1.9 GB of a shared machine.
        var wDec = dIn == DIn ? Fill(rng, (long)dIn * dSae, s) : wEnc;
        return new Weights(dSae, wEnc, wDec, Fill(rng, dSae, 0.1f), Fill(rng, dIn, 0.1f), th);
    });

    public static JumpReLUSae Sae(int dSae, bool bf16, int threads) => Cached($"sae{dSae}{bf16}{threads}", () =>
    {
        var w = Get(dSae);
        return JumpReLUSae.FromArrays(w.WEnc, w.WDec, w.BEnc, w.BDec, w.Threshold, DInFor(dSae), new SaeLoadOptions
        {
            Precision = bf16 ? SaePrecision.BFloat16 : SaePrecision.Float32,
            MaxDegreeOfParallelism = threads,
            Validation = SaeValidation.StructureOnly,
        });
    });

    /// <summary>ORT session: "jumprelu" (the full encode graph), "matmul" (x·W_enc) or "decode" (f·W_dec).</summary>
    public static InferenceSession Ort(string graph, int dSae, int threads) => Cached($"ort{graph}{dSae}{threads}", () =>
    {
        var w = Get(dSae);
        int dIn = DInFor(dSae);
        byte[] model = graph switch
        {
            "jumprelu" => OnnxGraphs.JumpReLU(w.WEnc, w.BEnc, w.Threshold, dIn, dSae),
            "matmul" => OnnxGraphs.MatMul(w.WEnc, dIn, dSae),
            _ => OnnxGraphs.MatMul(w.WDec, dSae, dIn),
        };
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        var session = new InferenceSession(model, options);

        // The model bytes (1.9 GB at 131k) are garbage now; free them before the next large allocation on a shared machine.
        model = [];
        GC.Collect();
        return session;
    });

    public static float[] Activations(int tokens, int dIn = DIn) => Fill(new Random(99 + tokens), (long)tokens * dIn, 1f);

    /// <summary>Kernel path and width each encode case took, for the results ("tokens/threads/d_sae" → text).</summary>
    public static SortedDictionary<string, string> Paths { get; } = [];

    public static void NotePath(int tokens, int threads, int dSae, JumpReLUSae fp32, JumpReLUSae bf16)
    {
        lock (Paths)
        {
            Paths[$"{dSae} {tokens,5} {threads}"] = $"fp32: {GemmaScope.Kernels.JumpReLUEncodeKernel.Describe(fp32.Weights, tokens)}; "
                + $"bf16: {GemmaScope.Kernels.JumpReLUEncodeKernel.Describe(bf16.Weights, tokens)}; packed copies {fp32.PackedEncoderBytes / 1048576.0:F0} / {bf16.PackedEncoderBytes / 1048576.0:F0} MB";
        }
    }

    public static T Cached<T>(string key, Func<T> make)
        where T : class
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(key, out var v))
            {
                v = make();
                Cache[key] = v;
            }

            return (T)v;
        }
    }

    private static float[] Fill(Random rng, long n, float scale)
    {
        var a = GC.AllocateUninitializedArray<float>(checked((int)n));
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = ((rng.NextSingle() * 2) - 1) * scale;
        }

        return a;
    }
}
