using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;
using Parquet.Serialization;

namespace GemmaScope.Scan;

/// <summary>A row of <c>features.parquet</c>: one per feature of each SAE.</summary>
public sealed class FeatureRecord
{
    /// <summary>SAE name.</summary>
    [JsonPropertyName("sae")] public string Sae { get; set; } = "";

    /// <summary>Hook point.</summary>
    [JsonPropertyName("hook")] public string Hook { get; set; } = "";

    /// <summary>Feature index.</summary>
    [JsonPropertyName("feature")] public int Feature { get; set; }

    /// <summary>Counted tokens where it fired.</summary>
    [JsonPropertyName("fire_count")] public long FireCount { get; set; }

    /// <summary>Counted tokens (not BOS/EOS/pad).</summary>
    [JsonPropertyName("tokens")] public long Tokens { get; set; }

    /// <summary>fire_count / tokens.</summary>
    [JsonPropertyName("density")] public double Density { get; set; }

    /// <summary>log10(density); −∞ for a feature that never fired.</summary>
    [JsonPropertyName("log10_density")] public double Log10Density { get; set; }

    /// <summary>Mean activation over all counted tokens (zeros included).</summary>
    [JsonPropertyName("mean")] public double Mean { get; set; }

    /// <summary>Mean activation where it fired.</summary>
    [JsonPropertyName("mean_active")] public double MeanActive { get; set; }

    /// <summary>Max activation (0 when it never fired).</summary>
    [JsonPropertyName("max")] public float Max { get; set; }

    /// <summary>Below the dead-density threshold.</summary>
    [JsonPropertyName("dead")] public bool Dead { get; set; }

    /// <summary>Display histogram: equal bins over [0, max] (fine bucket counts spread over the bins they overlap).</summary>
    [JsonPropertyName("hist_counts")] public long[] HistCounts { get; set; } = [];

    /// <summary>Exact 1/16-octave bucket counts (see FineHistogram), all 450.</summary>
    [JsonPropertyName("fine_hist")] public long[] FineHist { get; set; } = [];

    /// <summary>Logit lens: top token ids.</summary>
    [JsonPropertyName("top_logit_ids")] public int[] TopLogitIds { get; set; } = [];

    /// <summary>Logit lens: top token strings.</summary>
    [JsonPropertyName("top_logit_tokens")] public string[] TopLogitTokens { get; set; } = [];

    /// <summary>Logit lens: top values.</summary>
    [JsonPropertyName("top_logit_values")] public float[] TopLogitValues { get; set; } = [];

    /// <summary>Logit lens: bottom token ids.</summary>
    [JsonPropertyName("bottom_logit_ids")] public int[] BottomLogitIds { get; set; } = [];

    /// <summary>Logit lens: bottom token strings.</summary>
    [JsonPropertyName("bottom_logit_tokens")] public string[] BottomLogitTokens { get; set; } = [];

    /// <summary>Logit lens: bottom values.</summary>
    [JsonPropertyName("bottom_logit_values")] public float[] BottomLogitValues { get; set; } = [];
}

/// <summary>A row of <c>examples.parquet</c>: one per kept example.</summary>
public sealed class ExampleRecord
{
    /// <summary>SAE name.</summary>
    [JsonPropertyName("sae")] public string Sae { get; set; } = "";

    /// <summary>Feature index.</summary>
    [JsonPropertyName("feature")] public int Feature { get; set; }

    /// <summary>"top" or "quantile".</summary>
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";

    /// <summary>Rank within the top list or within the quantile group (0 first).</summary>
    [JsonPropertyName("rank")] public int Rank { get; set; }

    /// <summary>Quantile group (0 lowest), −1 for top examples.</summary>
    [JsonPropertyName("quantile_group")] public int QuantileGroup { get; set; }

    /// <summary>Activation at the example token.</summary>
    [JsonPropertyName("value")] public float Value { get; set; }

    /// <summary>Context index in the corpus.</summary>
    [JsonPropertyName("context")] public long Context { get; set; }

    /// <summary>Position of the example token in its context (0 is BOS).</summary>
    [JsonPropertyName("position")] public int Position { get; set; }

    /// <summary>Position of the first window token in the context.</summary>
    [JsonPropertyName("window_start")] public int WindowStart { get; set; }

    /// <summary>Window token ids.</summary>
    [JsonPropertyName("token_ids")] public int[] TokenIds { get; set; } = [];

    /// <summary>Window token strings.</summary>
    [JsonPropertyName("tokens")] public string[] Tokens { get; set; } = [];

    /// <summary>The feature's activation at each window token.</summary>
    [JsonPropertyName("values")] public float[] Values { get; set; } = [];
}

/// <summary>What a finished scan or merge wrote.</summary>
/// <param name="OutputFolder">The folder.</param>
/// <param name="FeaturesTable">features.parquet.</param>
/// <param name="ExamplesTable">examples.parquet.</param>
/// <param name="Dashboard">dashboard/index.html.</param>
/// <param name="TokensCounted">Tokens counted.</param>
/// <param name="DeadFeatures">Dead features per SAE.</param>
/// <param name="Parts">Parts merged.</param>
/// <param name="Wall">Wall time (scan and/or merge).</param>
public sealed record ScanResult(string OutputFolder, string FeaturesTable, string ExamplesTable, string Dashboard, long TokensCounted, int[] DeadFeatures, int Parts, TimeSpan Wall)
{
    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{TokensCounted:N0} tokens, {Parts} part(s), dead features [{string.Join(", ", DeadFeatures)}], {Wall.TotalSeconds:F1} s → {OutputFolder}");
}

internal static class ScanOutput
{
    public const string FeaturesFile = "features.parquet";
    public const string ExamplesFile = "examples.parquet";

    public static ScanResult Write(ScanState state, string outDir, GemmaModel? model, IReadOnlyList<ScanSae>? saes, ScanOptions options, int parts, Stopwatch wall)
    {
        var m = state.Manifest;
        var tokenizer = model?.Tokenizer as GemmaTokenizer;
        string Tok(int id) => tokenizer is null ? "#" + id.ToString(CultureInfo.InvariantCulture) : tokenizer.IdToToken(id).Replace('\u2581', ' ');
        UnembeddingWeights? unembed = null;
        if (model is not null && saes is { Count: > 0 })
        {
            try
            {
                unembed = model.ReadUnembedding();
            }
            catch (NotSupportedException)
            {
                unembed = null;
            }
        }

        var features = new List<FeatureRecord>();
        var examples = new List<ExampleRecord>();
        var dead = new int[m.Saes.Length];
        long tokens = state.TokensCounted;
        for (int s = 0; s < m.Saes.Length; s++)
        {
            var st = state.Saes[s];
            var info = m.Saes[s];
            var live = new List<int>();
            for (int f = 0; f < st.Features; f++)
            {
                if (st.Count[f] > 0)
                {
                    live.Add(f);
                }
            }

            var sae = saes?.FirstOrDefault(x => x.Name == info.Name);
            var lens = unembed is not null && sae is not null && sae.FeatureCount == info.Features
                ? LogitLens.Compute(unembed, sae, live, options.LogitLensTokens)
                : new LogitLens.Result?[live.Count];
            int li = 0;
            for (int f = 0; f < st.Features; f++)
            {
                long count = st.Count[f];
                double density = tokens == 0 ? 0 : (double)count / tokens;
                double log10 = count == 0 ? double.NegativeInfinity : Math.Log10(density);
                bool isDead = count == 0 || log10 < options.DeadLog10Density;
                if (isDead)
                {
                    dead[s]++;
                }

                double sum = (double)st.Sum[f] / SaeStats.SumScale;
                var rec = new FeatureRecord
                {
                    Sae = info.Name,
                    Hook = info.Hook,
                    Feature = f,
                    FireCount = count,
                    Tokens = tokens,
                    Density = density,
                    Log10Density = log10,
                    Mean = tokens == 0 ? 0 : sum / tokens,
                    MeanActive = count == 0 ? 0 : sum / count,
                    Max = count == 0 ? 0 : st.Max[f],
                    Dead = isDead,
                    HistCounts = FineHistogram.Rebin(st.HistOf(f), count == 0 ? 0 : st.Max[f], options.HistogramBins),
                    FineHist = st.HistOf(f).ToArray(),
                };
                if (count > 0)
                {
                    if (lens[li] is { } l)
                    {
                        rec.TopLogitIds = l.TopIds;
                        rec.TopLogitValues = l.TopValues;
                        rec.TopLogitTokens = [.. l.TopIds.Select(Tok)];
                        rec.BottomLogitIds = l.BottomIds;
                        rec.BottomLogitValues = l.BottomValues;
                        rec.BottomLogitTokens = [.. l.BottomIds.Select(Tok)];
                    }

                    li++;
                    AddExamples(examples, info.Name, f, st.Examples[f], m, Tok);
                }

                features.Add(rec);
            }
        }

        Directory.CreateDirectory(outDir);
        var featuresPath = Path.Combine(outDir, FeaturesFile);
        var examplesPath = Path.Combine(outDir, ExamplesFile);
        WriteAtomic(featuresPath, p => ParquetSerializer.SerializeAsync(features, p).GetAwaiter().GetResult());
        WriteAtomic(examplesPath, p => ParquetSerializer.SerializeAsync(examples, p).GetAwaiter().GetResult());
        var dashboard = Dashboard.Write(Path.Combine(outDir, "dashboard"), m, features, examples, options);
        NeuronpediaExport.Write(Path.Combine(outDir, "neuronpedia"), m, features, examples);
        var result = new ScanResult(Path.GetFullPath(outDir), featuresPath, examplesPath, dashboard, tokens, dead, parts, wall.Elapsed);
        var summary = new
        {
            tokens,
            contexts = m.Contexts,
            batches = m.Batches,
            coverage = m.Coverage,
            parts,
            wall_seconds = wall.Elapsed.TotalSeconds,
            saes = m.Saes.Select((x, i) => new { x.Name, x.Hook, x.Features, dead = dead[i], live = x.Features - dead[i] }),
        };
        WriteAtomic(Path.Combine(outDir, "summary.json"), p => File.WriteAllText(p, JsonSerializer.Serialize(summary, ScanManifest.Json)));
        return result;
    }

    private static void AddExamples(List<ExampleRecord> into, string sae, int f, FeatureExamples? ex, ScanManifest m, Func<int, string> tok)
    {
        if (ex is null)
        {
            return;
        }

        ExampleRecord Rec(Example e, string kind, int rank, int group) => new()
        {
            Sae = sae,
            Feature = f,
            Kind = kind,
            Rank = rank,
            QuantileGroup = group,
            Value = e.Value,
            Context = e.Global / m.ContextLength,
            Position = (int)(e.Global % m.ContextLength),
            WindowStart = e.WindowStart,
            TokenIds = e.Tokens,
            Tokens = [.. e.Tokens.Select(tok)],
            Values = e.Values,
        };

        for (int i = 0; i < ex.Top.Count; i++)
        {
            into.Add(Rec(ex.Top[i], "top", i, -1));
        }

        // Quantile groups: the uniform sample sorted by value (ties by corpus position), cut into equal rank groups.
        var sorted = ex.Sample.ToList();
        sorted.Sort((a, b) => a.Value != b.Value ? a.Value.CompareTo(b.Value) : a.Global.CompareTo(b.Global));
        int groups = m.QuantileGroups;
        for (int g = 0; g < groups; g++)
        {
            int lo = g * sorted.Count / groups, hi = (g + 1) * sorted.Count / groups;
            for (int i = lo; i < hi; i++)
            {
                into.Add(Rec(sorted[i], "quantile", i - lo, g));
            }
        }
    }

    internal static void WriteAtomic(string path, Action<string> write)
    {
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            write(tmp);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp))
            {
                File.Delete(tmp);
            }
        }
    }
}
