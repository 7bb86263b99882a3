namespace GemmaScope.Model.Benchmarks;

/// <summary>Settings shared by the benchmark process and its child load probes (environment variables override).</summary>
internal static class Bench
{
    /// <summary>Decoder layers of the generated checkpoint (GEMMASCOPE_BENCH_LAYERS, default 4: 26 do not fit next to the other jobs on a 24 GB machine).</summary>
    public static int Layers => int.TryParse(Environment.GetEnvironmentVariable("GEMMASCOPE_BENCH_LAYERS"), out int l) ? l : 4;

    /// <summary>ORT intra-op threads and bandwidth-probe threads (GEMMASCOPE_BENCH_THREADS, default: all logical CPUs).</summary>
    public static int Threads => int.TryParse(Environment.GetEnvironmentVariable("GEMMASCOPE_BENCH_THREADS"), out int t) ? t : Environment.ProcessorCount;

    /// <summary>Prefill length.</summary>
    public const int PrefillTokens = 128;

    /// <summary>Decode: prompt length, and tokens generated in the long run (per token = (long − one) / (DecodeSteps − 1)).</summary>
    public const int DecodePrompt = 16, DecodeSteps = 9;

    /// <summary>Where generated checkpoints go (GEMMASCOPE_BENCH_DIR, default $TMPDIR/gemmascope-bench); never inside the repository.</summary>
    public static string Root => Environment.GetEnvironmentVariable("GEMMASCOPE_BENCH_DIR") ?? Path.Combine(Path.GetTempPath(), "gemmascope-bench");

    public static string Checkpoint(bool bf16) => Path.Combine(Root, $"gemma2-2b-shaped-{Layers}L-{(bf16 ? "bf16" : "f32")}");

    /// <summary>Random token ids in [3, vocab), BOS first; fixed seed.</summary>
    public static int[] Ids(int count, int seed = 1)
    {
        var rng = new Random(seed);
        var ids = new int[count];
        ids[0] = 2;
        for (int i = 1; i < count; i++)
        {
            ids[i] = rng.Next(3, CheckpointGenerator.Vocab);
        }

        return ids;
    }
}
