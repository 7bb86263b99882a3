using BenchmarkDotNet.Attributes;
using GemmaScope.TestSupport;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Load of a 302 MB params.npz (d_in 2304, d_sae 16384, float32, stored members: memory-mapped, not copied), to an SAE
/// that can encode. StructureOnly checks names, shapes and dtypes; Full also scans every value.
/// </summary>
public class LoadNpz
{
    public static string NpzPath => Path.Combine(Path.GetTempPath(), "gemmascope-bench-16k", "params.npz");

    [Params(SaeValidation.StructureOnly, SaeValidation.Full)]
    public SaeValidation Validation { get; set; }

    [GlobalSetup]
    public void Setup() => EnsureNpz();

    [Benchmark(Description = "JumpReLUSae.Load(params.npz)")]
    public int Load()
    {
        using var sae = JumpReLUSae.Load(NpzPath, new SaeLoadOptions { Validation = Validation });
        return sae.FeatureCount;
    }

    /// <summary>
    /// One CRC-32 pass over the whole archive: what checksumming the stored members on a Full load would add
    /// (they are not checksummed; deflated members are, as they are inflated).
    /// </summary>
    [Benchmark(Description = "CRC-32 of params.npz (reference)")]
    public unsafe uint Crc32OfFile()
    {
        using var map = GemmaScope.Formats.MappedFile.Open(NpzPath);
        var crc = new System.IO.Hashing.Crc32();
        for (long at = 0; at < map.Length; at += 1 << 30)
        {
            crc.Append(map.Slice(at, Math.Min(map.Length - at, 1 << 30)));
        }

        return crc.GetCurrentHashAsUInt32();
    }

    public static void EnsureNpz()
    {
        if (File.Exists(NpzPath))
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(NpzPath)!);
        var w = Workloads.Get(16384);
        TestNpz.Write(NpzPath,
        [
            ("W_enc", [Workloads.DIn, w.DSae], w.WEnc),
            ("W_dec", [w.DSae, Workloads.DIn], w.WDec),
            ("b_enc", [w.DSae], w.BEnc),
            ("b_dec", [Workloads.DIn], w.BDec),
            ("threshold", [w.DSae], w.Threshold),
        ]);
    }
}
