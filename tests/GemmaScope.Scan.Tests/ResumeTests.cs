using System.Diagnostics;

namespace GemmaScope.Scan.Tests;

/// <summary>kill -9 of a shard after unsaved batches, then a rerun: the part equals an uninterrupted run's, byte for byte.</summary>
[Collection("scan")]
public sealed class ResumeTests(ScanFixture fx)
{
    [Fact]
    public void Kill_9_mid_shard_then_resume_equals_an_uninterrupted_run()
    {
        var dir = fx.NewDir("resume");
        var outDir = Path.Combine(dir, "out");
        string[] args = ["scan", "-m", ScanFixture.ModelDir, "--sae", ScanFixture.SaePath + "@" + ScanFixture.SaeHook, "-c", fx.Corpus, "-o", outDir,
            "--context", "16", "--batch", "4", "--top-k", "6", "--window", "8", "--checkpoint-every", "2", "--shard", "0", "--shards", "2"];
        var psi = ScanFixture.Cli(args);
        psi.Environment["GEMMASCOPE_SCAN_STALL_AFTER_BATCH"] = "4"; // checkpoint after batch 3 (gen-4), batch 4 done but unsaved
        using (var p = Process.Start(psi)!)
        {
            _ = p.StandardOutput.ReadToEndAsync();
            string? line;
            var seen = new List<string>();
            while ((line = p.StandardError.ReadLine()) is not null && !line.Contains("stalled after batch 4", StringComparison.Ordinal))
            {
                seen.Add(line);
            }

            Assert.True(line is not null, "the scan ended before the stall: " + string.Join("\n", seen));
            p.Kill(); // SIGKILL on Unix
            p.WaitForExit();
        }

        var part = Path.Combine(outDir, "parts", FeatureScan.PartName(0, 2));
        Assert.False(File.Exists(Path.Combine(part, "_SUCCESS")));
        Assert.Equal(["gen-000000000004"], Directory.GetDirectories(part, "gen-*").Select(Path.GetFileName));

        var (code, stdout, stderr) = ScanFixture.RunCli(args);
        Assert.True(code == 0, stderr);
        Assert.Contains("resumed at 4", stdout, StringComparison.Ordinal);

        var reference = Path.Combine(dir, "uninterrupted");
        var options = new ScanOptions { ContextLength = 16, BatchSize = 4, TopK = 6, ExampleWindow = 8, CheckpointEveryBatches = 2 };
        new FeatureScan(fx.Model, [ScanSae.From(fx.Sae)], new TextCorpus([fx.Corpus]), options).RunShard(reference, 0, 2);
        var a = Directory.GetDirectories(part, "gen-*").Single();
        var b = Directory.GetDirectories(reference, "gen-*").Single();
        Assert.Equal(Path.GetFileName(b), Path.GetFileName(a));
        foreach (var f in new[] { "feature_state.parquet", "example_state.parquet" })
        {
            Assert.True(File.ReadAllBytes(Path.Combine(a, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, f))), f + " differs after resume");
        }

        Assert.Equal(File.ReadAllText(Path.Combine(b, "state.json")), File.ReadAllText(Path.Combine(a, "state.json")));
    }
}
