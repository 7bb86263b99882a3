using GemmaScope.Onnx;

namespace GemmaScope.Model.Benchmarks;

/// <summary>Opens the generated checkpoint with <c>GemmaModel.FromPretrained</c> and the benchmark's thread count.</summary>
internal static class ModelHost
{
    /// <summary>
    /// The benchmark's thread count; GEMMASCOPE_BENCH_BINDING (Initializers or ExternalData) picks FromPretrained's
    /// internal weight binding, so the load probe can compare the two (set by reflection: the option is internal).
    /// </summary>
    public static GemmaModelOptions Options
    {
        get
        {
            var options = new GemmaModelOptions { IntraOpThreads = Bench.Threads };
            if (Environment.GetEnvironmentVariable("GEMMASCOPE_BENCH_BINDING") is { Length: > 0 } binding)
            {
                var prop = typeof(GemmaModelOptions).GetProperty("WeightBinding", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)
                    ?? throw new NotSupportedException("GemmaModelOptions has no WeightBinding in this build.");
                prop.SetValue(options, Enum.Parse(prop.PropertyType, binding));
            }

            return options;
        }
    }

    public static GemmaModel Open(string folder) => GemmaModel.FromPretrained(folder, Options);

    /// <summary>The five block sites plus attn.hook_z of every layer (as the "all 5 sites", and comparable across runs).</summary>
    public static HookPoint[] AllSites(int layers)
    {
        HookKind[] kinds = [HookKind.ResidPre, HookKind.ResidMid, HookKind.ResidPost, HookKind.AttnOut, HookKind.MlpOut, HookKind.AttnZ];
        var list = new List<HookPoint>();
        for (int l = 0; l < layers; l++)
        {
            foreach (var kind in kinds)
            {
                list.Add(HookPoint.Create(l, kind));
            }
        }

        return [.. list];
    }
}
