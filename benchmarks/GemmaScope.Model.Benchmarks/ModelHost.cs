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

    public static GemmaModel Open(string folder)
    {
        // Looked up by reflection so that the harness (baselines, generator, probes) builds and runs before FromPretrained exists.
        var method = typeof(GemmaModel).GetMethod("FromPretrained", [typeof(string), typeof(GemmaModelOptions)])
            ?? throw new NotSupportedException("GemmaModel.FromPretrained(string, GemmaModelOptions?) is not in this build of GemmaScope.Onnx.");
        try
        {
            return (GemmaModel)method.Invoke(null, [folder, Options])!;
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    /// <summary>All six hook kinds of every layer (the five block sites plus attn.hook_z).</summary>
    public static HookPoint[] AllSites(int layers)
    {
        var list = new List<HookPoint>();
        for (int l = 0; l < layers; l++)
        {
            foreach (var kind in Enum.GetValues<HookKind>())
            {
                list.Add(HookPoint.Create(l, kind));
            }
        }

        return [.. list];
    }
}
