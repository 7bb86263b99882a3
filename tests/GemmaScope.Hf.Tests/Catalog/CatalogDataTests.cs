using System.IO.Compression;
using System.Text;

namespace GemmaScope.Hf.Tests;

/// <summary>The checked-in catalog data is exactly what the generator makes from the checked-in SAELens source.</summary>
public sealed class CatalogDataTests
{
    [Fact]
    public void The_catalog_data_equals_a_fresh_generation_from_the_checked_in_SAELens_registry()
    {
        var fresh = CatalogGenerator.GenerateFromSource();
        if (Environment.GetEnvironmentVariable("GEMMASCOPE_WRITE_CATALOG") == "1")
        {
            using var file = File.Create(CatalogGenerator.DataPath);
            using var gz = new GZipStream(file, CompressionLevel.SmallestSize);
            gz.Write(Encoding.UTF8.GetBytes(fresh));
        }

        using var reader = new StreamReader(new GZipStream(File.OpenRead(CatalogGenerator.DataPath), CompressionMode.Decompress), Encoding.UTF8);
        var checkedIn = reader.ReadToEnd();
        Assert.True(checkedIn == fresh,
            "src/GemmaScope.Hf/Catalog/catalog.tsv.gz differs from a fresh generation; run this test with GEMMASCOPE_WRITE_CATALOG=1 to rewrite it.");
    }

    [Fact]
    public void The_library_reads_every_generated_row()
    {
        var lines = CatalogGenerator.GenerateFromSource().Split('\n');
        int releases = lines.Count(l => l.StartsWith("R\t", StringComparison.Ordinal));
        int saes = lines.Count(l => l.StartsWith("S\t", StringComparison.Ordinal));
        Assert.Equal(releases, GemmaScopeCatalog.Releases.Count);
        Assert.Equal(saes, GemmaScopeCatalog.Releases.Sum(r => r.Saes.Count));
        Assert.Equal(CatalogGenerator.SaeLensCommit, GemmaScopeCatalog.SaeLensSourceCommit);
    }
}
