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

    private static readonly Dictionary<string, object> Cache = [];

    public sealed record Weights(int DSae, float[] WEnc, float[] WDec, float[] BEnc, float[] BDec, float[] Threshold);

    public static Weights Get(int dSae) => Cached($"w{dSae}", () =>
    {
        var rng = new Random(1234 + dSae);
        float s = 1f / MathF.Sqrt(DIn);
        var th = new float[dSae];
        for (int j = 0; j < dSae; j++)
        {
            th[j] = 0.75f + (0.25f * rng.NextSingle());
        }

        return new Weights(dSae, Fill(rng, (long)DIn * dSae, s), Fill(rng, (long)DIn * dSae, s), Fill(rng, dSae, 0.1f), Fill(rng, DIn, 0.1f), th);
    });

    public static JumpReLUSae Sae(int dSae, bool bf16, int threads) => Cached($"sae{dSae}{bf16}{threads}", () =>
    {
        var w = Get(dSae);
        return JumpReLUSae.FromArrays(w.WEnc, w.WDec, w.BEnc, w.BDec, w.Threshold, DIn, new SaeLoadOptions
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
        byte[] model = graph switch
        {
            "jumprelu" => OnnxGraphs.JumpReLU(w.WEnc, w.BEnc, w.Threshold, DIn, dSae),
            "matmul" => OnnxGraphs.MatMul(w.WEnc, DIn, dSae),
            _ => OnnxGraphs.MatMul(w.WDec, dSae, DIn),
        };
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        return new InferenceSession(model, options);
    });

    public static float[] Activations(int tokens) => Fill(new Random(99 + tokens), (long)tokens * DIn, 1f);

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
