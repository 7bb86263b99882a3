using Parquet.Serialization;

namespace GemmaScope.Scan.Tests;

internal static class TestTables
{
    public static IList<FeatureRecord> Features(string dir) =>
        ParquetSerializer.DeserializeAsync<FeatureRecord>(Path.Combine(dir, "features.parquet")).GetAwaiter().GetResult().Data;

    public static IList<ExampleRecord> Examples(string dir) =>
        ParquetSerializer.DeserializeAsync<ExampleRecord>(Path.Combine(dir, "examples.parquet")).GetAwaiter().GetResult().Data;

    /// <summary>Byte-for-byte equality of the tables and the merged state's Parquet files.</summary>
    public static void AssertSameBytes(string expectedDir, string actualDir)
    {
        foreach (var f in new[] { "features.parquet", "examples.parquet" })
        {
            Assert.True(File.ReadAllBytes(Path.Combine(expectedDir, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actualDir, f))), $"{f} differs between {expectedDir} and {actualDir}");
        }

        var e = Directory.GetDirectories(Path.Combine(expectedDir, "state"), "gen-*").Single();
        var a = Directory.GetDirectories(Path.Combine(actualDir, "state"), "gen-*").Single();
        foreach (var f in new[] { "feature_state.parquet", "example_state.parquet" })
        {
            Assert.True(File.ReadAllBytes(Path.Combine(e, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(a, f))), $"state {f} differs between {expectedDir} and {actualDir}");
        }
    }
}
