namespace GemmaScope.Scan;

/// <summary>How a corpus is cut into contexts and what is kept per feature. Every shard and the merge must use the same values (checked).</summary>
public sealed record ScanOptions
{
    /// <summary>Tokens per context, BOS included (SAEDashboard's default is 128).</summary>
    public int ContextLength { get; init; } = 128;

    /// <summary>Contexts per forward pass. Batches are fixed slices of the corpus, so every shard count runs the same batches.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Top-activating examples kept per feature (20 as SAEDashboard).</summary>
    public int TopK { get; init; } = 20;

    /// <summary>Quantile groups per feature (5).</summary>
    public int QuantileGroups { get; init; } = 5;

    /// <summary>Examples per quantile group (5).</summary>
    public int ExamplesPerGroup { get; init; } = 5;

    /// <summary>Tokens of context stored around each example's peak token (3/4 before it, the rest after).</summary>
    public int ExampleWindow { get; init; } = 32;

    /// <summary>Seed of the hash that samples the quantile examples (a uniform sample of each feature's firing tokens).</summary>
    public ulong SampleSeed { get; init; } = 0x5CA9_5EED_0000_0001UL;

    /// <summary>The JSONL field or Parquet column holding the text.</summary>
    public string TextField { get; init; } = "text";

    /// <summary>Save a checkpoint after this many batches (and at the end).</summary>
    public int CheckpointEveryBatches { get; init; } = 64;

    /// <summary>Logit-lens tokens kept at each end (top and bottom 10).</summary>
    public int LogitLensTokens { get; init; } = 10;

    /// <summary>Features whose log10 density is below this are listed as dead (SAEDashboard: −6). Features that never fire are always dead.</summary>
    public double DeadLog10Density { get; init; } = -6;

    /// <summary>Histogram bins in the dashboard and the features table (50).</summary>
    public int HistogramBins { get; init; } = 50;

    internal int SampleSize => QuantileGroups * ExamplesPerGroup;

    internal void Validate()
    {
        if (ContextLength < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(ContextLength), ContextLength, "A context needs BOS and at least one token.");
        }

        if (BatchSize < 1 || TopK < 1 || QuantileGroups < 1 || ExamplesPerGroup < 1 || ExampleWindow < 1 || CheckpointEveryBatches < 1 || HistogramBins < 1 || LogitLensTokens < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ScanOptions), this, "Batch size, top-k, quantile groups, examples per group, window, checkpoint interval and bins must be positive.");
        }
    }
}

/// <summary>Progress of a running scan, reported after each batch.</summary>
/// <param name="TokensDone">Corpus tokens of this shard processed so far (BOS of each context not counted).</param>
/// <param name="TokensTotal">Corpus tokens of this shard.</param>
/// <param name="TokensPerSecond">Throughput since this process started.</param>
/// <param name="Remaining">Estimated time left.</param>
/// <param name="BatchesDone">Batches of this shard done (including those resumed from a checkpoint).</param>
/// <param name="BatchesTotal">Batches of this shard.</param>
public readonly record struct ScanProgress(long TokensDone, long TokensTotal, double TokensPerSecond, TimeSpan Remaining, long BatchesDone, long BatchesTotal)
{
    /// <inheritdoc/>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{TokensDone:N0}/{TokensTotal:N0} tokens ({(TokensTotal == 0 ? 100 : 100.0 * TokensDone / TokensTotal):F1}%), {TokensPerSecond:N0} tok/s, ETA {Remaining:hh\\:mm\\:ss}");
}
