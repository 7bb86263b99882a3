using System.Text.Json;
using System.Text.Json.Serialization;

namespace GemmaScope.Scan;

/// <summary>What a part or a merged result covers and how it was made (state.json). Parts merge only when everything but the coverage agrees.</summary>
public sealed record ScanManifest
{
    /// <summary>Format version.</summary>
    public int Version { get; init; } = 1;

    /// <summary>XxHash64 of the corpus token stream and the cut, hex.</summary>
    public required string CorpusFingerprint { get; init; }

    /// <summary>Corpus files.</summary>
    public required string[] CorpusFiles { get; init; }

    /// <summary>The model folder.</summary>
    public required string Model { get; init; }

    /// <summary>Corpus tokens (the stream, BOS separators included).</summary>
    public required long StreamTokens { get; init; }

    /// <summary>Contexts in the whole corpus.</summary>
    public required long Contexts { get; init; }

    /// <summary>Batches in the whole corpus.</summary>
    public required long Batches { get; init; }

    /// <summary>Context length.</summary>
    public required int ContextLength { get; init; }

    /// <summary>Contexts per batch.</summary>
    public required int BatchSize { get; init; }

    /// <summary>Top examples per feature.</summary>
    public required int TopK { get; init; }

    /// <summary>Quantile groups.</summary>
    public required int QuantileGroups { get; init; }

    /// <summary>Examples per quantile group.</summary>
    public required int ExamplesPerGroup { get; init; }

    /// <summary>Example window.</summary>
    public required int ExampleWindow { get; init; }

    /// <summary>Sample seed.</summary>
    public required ulong SampleSeed { get; init; }

    /// <summary>The SAEs, in table order.</summary>
    public required ManifestSae[] Saes { get; init; }

    /// <summary>Batch ranges [start, end) whose statistics this holds, sorted and disjoint.</summary>
    public required long[][] Coverage { get; init; }

    /// <summary>Tokens counted (not BOS, EOS or pad) in the covered batches.</summary>
    public required long TokensCounted { get; init; }

    /// <summary>For a shard: its index, count and batch range; the next batch to run (= end when complete).</summary>
    public ManifestShard? Shard { get; init; }

    internal static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Whether two manifests describe the same scan (everything but coverage, shard and counts).</summary>
    public string? Incompatibility(ScanManifest o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (CorpusFingerprint != o.CorpusFingerprint)
        {
            return $"corpus fingerprint {CorpusFingerprint} ≠ {o.CorpusFingerprint} (a different corpus, tokenizer, context length or batch size)";
        }

        if (ContextLength != o.ContextLength || BatchSize != o.BatchSize || TopK != o.TopK || QuantileGroups != o.QuantileGroups ||
            ExamplesPerGroup != o.ExamplesPerGroup || ExampleWindow != o.ExampleWindow || SampleSeed != o.SampleSeed || Batches != o.Batches)
        {
            return "scan options differ (context length, batch size, top-k, quantile groups, window or seed)";
        }

        if (Saes.Length != o.Saes.Length || Saes.Zip(o.Saes).Any(p => p.First.Name != p.Second.Name || p.First.Hook != p.Second.Hook || p.First.Features != p.Second.Features))
        {
            return $"SAEs differ: [{string.Join(", ", Saes.Select(s => s.Name))}] vs [{string.Join(", ", o.Saes.Select(s => s.Name))}]";
        }

        return null;
    }
}

/// <summary>An SAE of a scan.</summary>
/// <param name="Name">Table name.</param>
/// <param name="Hook">Hook point name.</param>
/// <param name="Features">d_sae.</param>
/// <param name="Source">Where it was loaded from.</param>
/// <param name="NeuronpediaId">Neuronpedia model/sae id, if known.</param>
public sealed record ManifestSae(string Name, string Hook, int Features, string Source, string? NeuronpediaId);

/// <summary>A shard's place.</summary>
/// <param name="Index">Shard index.</param>
/// <param name="Count">Shard count.</param>
/// <param name="Start">First batch.</param>
/// <param name="End">End batch (exclusive).</param>
/// <param name="Next">Next batch to run.</param>
public sealed record ManifestShard(int Index, int Count, long Start, long End, long Next);

/// <summary>Everything a scan holds: the manifest and each SAE's statistics.</summary>
internal sealed class ScanState
{
    public required ScanManifest Manifest { get; set; }

    public required SaeStats[] Saes { get; init; }

    [JsonIgnore]
    public long TokensCounted { get; set; }
}
