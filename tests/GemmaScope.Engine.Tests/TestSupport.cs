
namespace GemmaScope.Engine.Tests;

/// <summary>Fixture paths, recording hooks and comparisons shared by the engine tests.</summary>
internal static class TestSupport
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>The tiny Gemma 2 (4 layers, d 48, window 4) in Hugging Face layout: single, sharded or bf16.</summary>
    public static string Gemma2(string layout) => Path.Combine(Fixtures, "tiny-gemma2-hf", layout);

    /// <summary>The tiny Gemma 3 (7 layers, QK-norm, window 4, linear RoPE ×8 on the global layer): text or multimodal.</summary>
    public static string Gemma3(string layout) => Path.Combine(Fixtures, "tiny-gemma3", layout);

    private static readonly Lazy<Gemma2Reference> LazyF32 = new(() => new Gemma2Reference(Path.Combine(Fixtures, "tiny-gemma2")));
    private static readonly Lazy<Gemma2Reference> LazyBf16 = new(() => new Gemma2Reference(Path.Combine(Fixtures, "tiny-gemma2"), roundToBFloat16: true));

    /// <summary>The float64 reference on the tiny Gemma 2's float32 weights (weights.npz, the same values as the checkpoints).</summary>
    public static Gemma2Reference Reference => LazyF32.Value;

    /// <summary>The float64 reference on the weights rounded to bfloat16.</summary>
    public static Gemma2Reference Bf16Reference => LazyBf16.Value;

    /// <summary>BOS then seeded random ids in [4, 256).</summary>
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

    /// <summary>
    /// Element-wise |actual − expected| ≤ tol · max(1, max |expected| of the row); infinities must match exactly
    /// (masked attention scores are −∞ in both).
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> actual, double[] expected, int width, double tol, string what)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        for (int r = 0; r < expected.Length / width; r++)
        {
            double scale = 1;
            for (int j = 0; j < width; j++)
            {
                double e = expected[(r * width) + j];
                if (double.IsFinite(e))
                {
                    scale = Math.Max(scale, Math.Abs(e));
                }
            }

            for (int j = 0; j < width; j++)
            {
                int i = (r * width) + j;
                double e = expected[i], a = actual[i];
                if (double.IsInfinity(e) || float.IsInfinity(actual[i]))
                {
                    Assert.True(e == a, $"{what}[row {r}, col {j}]: {a}, expected {e}");
                    continue;
                }

                Assert.True(Math.Abs(a - e) <= tol * scale, $"{what}[row {r}, col {j}]: {a}, expected {e}, allowed {tol * scale:G3}");
            }
        }
    }
}

/// <summary>Records copies of the hook points it wants, after an optional edit of the live span (as the reference records them).</summary>
internal sealed class RecordingHooks(Func<HookPoint, bool> wants, HookEdit? edit = null) : IForwardHooks
{
    public Dictionary<string, (float[] Rows, int Width, int KeyPositions)> Seen { get; } = new(StringComparer.Ordinal);

    public List<HookPoint> Order { get; } = [];

    public static RecordingHooks All() => new(_ => true);

    public bool Wants(HookPoint point) => wants(point);

    public void OnHook(HookPoint point, in HookSite site, Span<float> rows)
    {
        Assert.Equal(site.TotalRows * site.Width, rows.Length);
        edit?.Invoke(point, site, rows);
        Seen[point.Name] = (rows.ToArray(), site.Width, site.KeyPositions);
        Order.Add(point);
    }
}

internal delegate void HookEdit(HookPoint point, in HookSite site, Span<float> rows);
