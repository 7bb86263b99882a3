using System.Diagnostics;
using DuckDB.NET.Data;

namespace GemmaScope.Scan.Tests;

/// <summary>The tables read by DuckDB (an independent Parquet reader) and the dashboard opened in headless Chromium.</summary>
[Collection("scan")]
public sealed class OutputTests(ScanFixture fx)
{
    private string Scan()
    {
        var dir = fx.NewDir("out");
        new FeatureScan(fx.Model, fx.Saes().Select((s, i) => i == 0 ? s.WithNeuronpediaId("gemma-2-2b/tiny-test") : s).ToList(), new TextCorpus([fx.Corpus]), ScanFixture.SmallOptions).Run(dir);
        return dir;
    }

    [Fact]
    public void DuckDB_reads_the_tables()
    {
        var dir = Scan();
        var features = TestTables.Features(dir);
        var examples = TestTables.Examples(dir);
        using var db = new DuckDBConnection("Data Source=:memory:");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT count(*)::BIGINT, sum(fire_count)::BIGINT, max(max), sum(len(hist_counts))::BIGINT FROM read_parquet('{Path.Combine(dir, "features.parquet")}')";
        using (var r = cmd.ExecuteReader())
        {
            Assert.True(r.Read());
            Assert.Equal(features.Count, Convert.ToInt64(r.GetValue(0)));
            Assert.Equal(features.Sum(f => f.FireCount), Convert.ToInt64(r.GetValue(1)));
            Assert.Equal(features.Max(f => f.Max), Convert.ToSingle(r.GetValue(2)));
            Assert.Equal(features.Sum(f => f.HistCounts.Length), Convert.ToInt64(r.GetValue(3)));
        }

        var top = examples.Where(e => e.Kind == "top").OrderByDescending(e => e.Value).ThenBy(e => e.Context).ThenBy(e => e.Position).First();
        cmd.CommandText = $"SELECT sae, feature, value, tokens[position - window_start + 1], list_max(values) FROM read_parquet('{Path.Combine(dir, "examples.parquet")}') WHERE kind = 'top' ORDER BY value DESC, context, position LIMIT 1";
        using (var r = cmd.ExecuteReader())
        {
            Assert.True(r.Read());
            Assert.Equal(top.Sae, r.GetString(0));
            Assert.Equal(top.Feature, Convert.ToInt32(r.GetValue(1)));
            Assert.Equal(top.Value, Convert.ToSingle(r.GetValue(2)));
            Assert.Equal(top.Tokens[top.Position - top.WindowStart], r.GetString(3));
            Assert.Equal(top.Value, Convert.ToSingle(r.GetValue(4)));
        }
    }

    [RequiresFact("chromium")]
    public void Dashboard_renders_in_headless_chromium()
    {
        var dir = Scan();
        var shots = Directory.CreateDirectory(Path.Combine(ScanFixture.Here, "TestOutput")).FullName;
        var index = Path.Combine(dir, "dashboard", "index.html");
        var feature = TestTables.Features(dir).Where(f => !f.Dead && f.Sae == ScanFixture.SaeHook).OrderByDescending(f => f.FireCount).First();
        var page = Path.Combine(dir, "dashboard", "f", "0", feature.Feature + ".html");

        // The index's table is built by its script from inline data: the DOM after scripts ran must hold the rows.
        var dom = Chromium("--dump-dom", new Uri(index).AbsoluteUri);
        Assert.Contains($"href=\"f/0/{feature.Feature}.html\"", dom, StringComparison.Ordinal);
        Assert.Contains("features</p>", dom, StringComparison.Ordinal);

        var html = File.ReadAllText(page);
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        Assert.Equal(20, html.Split("<rect ").Length - 1);
        Assert.Contains($"https://www.neuronpedia.org/gemma-2-2b/tiny-test/{feature.Feature}", html, StringComparison.Ordinal);
        Assert.Contains("class=\"tok peak\"", html, StringComparison.Ordinal);

        // One screenshot (each Chromium start costs seconds): the feature card, to look at.
        var shot = Path.Combine(shots, "dashboard-feature.png");
        File.Delete(shot);
        Chromium("--screenshot=" + shot, "--window-size=1100,1000", new Uri(page).AbsoluteUri);
        Assert.True(new FileInfo(shot).Length > 10_000, "feature page screenshot is empty");
    }

    private static string Chromium(params string[] args)
    {
        var psi = new ProcessStartInfo(RequiresFactAttribute.Find("chromium")!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files" }.Concat(args))
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish: " + err.Result);
        }

        Assert.True(p.ExitCode == 0, "chromium failed: " + err.Result);
        return output;
    }
}
