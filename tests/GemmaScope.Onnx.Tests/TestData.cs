using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

internal static class TestData
{
    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-gemma2");

    public static string ModelPath(string layout) => Path.Combine(FixtureDir, layout, "model.onnx");

    /// <summary>The tiny model in Hugging Face's checkpoint layout: single, sharded or bf16.</summary>
    public static string CheckpointDir(string layout) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-gemma2-hf", layout);

    /// <summary>
    /// The tiny Gemma 2 by layout: an ONNX export ("torch", "genai", "external") on ONNX Runtime; "built": the checkpoint
    /// folder on ONNX Runtime (the graph FromPretrained builds); "native": the same checkpoint on the native engine.
    /// </summary>
    public static GemmaModel Open(string layout) => layout switch
    {
        "built" => GemmaModel.FromPretrained(CheckpointDir("single"), EngineData.Options(GemmaEngineKind.OnnxRuntime)),
        "native" => GemmaModel.FromPretrained(CheckpointDir("single"), EngineData.Options(GemmaEngineKind.Native)),
        _ => GemmaModel.Load(ModelPath(layout)),
    };

    private static readonly Lazy<Gemma2Reference> LazyBf16Reference = new(() => new Gemma2Reference(FixtureDir, roundToBFloat16: true));

    /// <summary>The reference forward on the weights rounded to bfloat16.</summary>
    public static Gemma2Reference Bf16Reference => LazyBf16Reference.Value;

    private static readonly Lazy<Gemma2Reference> LazyReference = new(() => new Gemma2Reference(FixtureDir));

    public static Gemma2Reference Reference => LazyReference.Value;

    /// <summary>Random ids in [4, vocab) after BOS (2); seeded.</summary>
    public static int[] RandomIds(int length, int seed)
    {
        var rng = new Random(seed);
        var ids = new int[length];
        ids[0] = 2;
        for (int i = 1; i < length; i++)
        {
            ids[i] = rng.Next(4, 256);
        }

        return ids;
    }

    /// <summary>Every hook point of every layer that both engines expose; <c>ln2.hook_normalized</c>, <c>hook_mlp_in</c> and <c>hook_embed</c> only when asked (built models only).</summary>
    public static IEnumerable<HookPoint> AllSites(int layers, bool withLn2 = false)
    {
        for (int l = 0; l < layers; l++)
        {
            foreach (var kind in (HookKind[])[HookKind.ResidPre, HookKind.ResidMid, HookKind.ResidPost, HookKind.AttnOut, HookKind.MlpOut, HookKind.AttnZ, HookKind.Ln2Normalized, HookKind.MlpIn, HookKind.Embed])
            {
                // ln2.hook_normalized, hook_mlp_in and hook_embed: only asked of built models
                if ((kind is HookKind.Ln2Normalized or HookKind.MlpIn or HookKind.Embed && !withLn2) || (kind == HookKind.Embed && l > 0))
                {
                    continue;
                }

                yield return HookPoint.Create(l, kind);
            }
        }
    }

    /// <summary>Asserts float32 results equal a float64 reference: |a − r| ≤ tol · (1 + max|r|) element-wise.</summary>
    public static void AssertClose(ReadOnlySpan<float> actual, double[] expected, double tol, string what)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        double scale = 1;
        foreach (var e in expected)
        {
            scale = Math.Max(scale, Math.Abs(e));
        }

        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            if (!(err <= worst))
            {
                worst = err;
                at = i;
            }
        }

        Assert.True(worst <= tol * scale, $"{what}: max error {worst:G3} at {at} (actual {(at >= 0 ? actual[at] : 0)}, expected {(at >= 0 ? expected[at] : 0)}), allowed {tol * scale:G3}");
    }
}
