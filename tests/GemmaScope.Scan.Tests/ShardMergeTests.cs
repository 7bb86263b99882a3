namespace GemmaScope.Scan.Tests;

/// <summary>Sharded scans merged in permuted orders give the same bytes as one process; overlapping or unfinished parts are refused.</summary>
[Collection("scan")]
public sealed class ShardMergeTests(ScanFixture fx)
{
    [Fact]
    public void Shards_1_2_3_7_merged_in_any_order_equal_the_single_process_scan()
    {
        var options = ScanFixture.SmallOptions;
        var corpus = new TextCorpus([fx.Corpus]);
        var single = fx.NewDir("single");
        new FeatureScan(fx.Model, fx.Saes(), corpus, options).Run(single);
        var rng = new Random(3);
        foreach (int n in new[] { 1, 2, 3, 7 })
        {
            var root = fx.NewDir($"shards{n}");
            var parts = new List<string>();
            var scan = new FeatureScan(fx.Model, fx.Saes(), corpus, options);
            Assert.True(scan.BatchCount >= 7, $"{scan.BatchCount} batches: too few for 7 shards");
            for (int i = n - 1; i >= 0; i--)
            {
                var part = Path.Combine(root, "parts", FeatureScan.PartName(i, n));
                scan.RunShard(part, i, n);
                parts.Add(part);
            }

            var permuted = parts.OrderBy(_ => rng.Next()).ToList();
            var merged = Path.Combine(root, "merged");
            var result = FeatureScan.Merge(permuted, merged, fx.Model, fx.Saes(), options);
            Assert.Equal(n, result.Parts);
            TestTables.AssertSameBytes(single, merged);
        }
    }

    [Fact]
    public void Overlapping_or_unfinished_parts_are_refused()
    {
        var options = ScanFixture.SmallOptions;
        var corpus = new TextCorpus([fx.Corpus]);
        var root = fx.NewDir("overlap");
        var scan = new FeatureScan(fx.Model, fx.Saes(), corpus, options);
        var a = Path.Combine(root, "a");
        var b = Path.Combine(root, "b");
        scan.RunShard(a, 0, 2);
        scan.RunShard(b, 0, 2);
        var e = Assert.Throws<InvalidDataException>(() => FeatureScan.Merge([a, b], Path.Combine(root, "m")));
        Assert.Contains("overlap", e.Message, StringComparison.Ordinal);

        File.Delete(Path.Combine(b, "_SUCCESS"));
        var e2 = Assert.Throws<InvalidDataException>(() => FeatureScan.Merge([a, b], Path.Combine(root, "m")));
        Assert.Contains("_SUCCESS", e2.Message, StringComparison.Ordinal);
    }
}
