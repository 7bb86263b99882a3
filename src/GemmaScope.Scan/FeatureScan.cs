using System.Diagnostics;
using System.Globalization;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

namespace GemmaScope.Scan;

/// <summary>
/// Streams a corpus through a Gemma model and one or more SAEs or transcoders (all in one forward pass per batch), and
/// keeps per feature the density, mean, max, an exact fine histogram, the top-k examples and a uniform sample for the
/// quantile groups. A run is one shard (a fixed range of batches) that checkpoints as it goes and resumes after a kill;
/// <see cref="Merge"/> folds any set of finished parts, in any order, into the same bits one process gets over the
/// whole corpus, then writes the Parquet tables and the HTML dashboard.
/// </summary>
/// <remarks>
/// Memory is independent of the corpus size. Per SAE: 3,628 bytes per feature of dense statistics (16k features: 59 MB)
/// plus, for each feature that fires, (TopK + QuantileGroups × ExamplesPerGroup) × (8 × ExampleWindow + ~100) bytes of
/// examples (defaults: 45 × 356 = 16 KB; 16k live features: 262 MB), plus one batch of activations and features.
/// </remarks>
public sealed class FeatureScan
{
    private readonly GemmaModel _model;
    private readonly ScanSae[] _saes;
    private readonly TextCorpus _corpus;
    private readonly ScanOptions _options;
    private readonly GemmaTokenizer _tokenizer;
    private ContextPlan? _plan;

    /// <summary>Prepares a scan; checks that the model has every SAE's hook point at the SAE's width.</summary>
    /// <param name="model">A Gemma model with a Gemma tokenizer (FromPretrained on a checkpoint folder with tokenizer.model or tokenizer.json).</param>
    /// <param name="saes">The SAEs (distinct names).</param>
    /// <param name="corpus">The corpus.</param>
    /// <param name="options">Options; defaults are SAEDashboard's.</param>
    /// <exception cref="ArgumentException">No SAE, duplicate names, a hook the model lacks, or a width mismatch.</exception>
    public FeatureScan(GemmaModel model, IReadOnlyList<ScanSae> saes, TextCorpus corpus, ScanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(saes);
        ArgumentNullException.ThrowIfNull(corpus);
        _options = options ?? new ScanOptions();
        _options.Validate();
        _model = model;
        _corpus = corpus;
        _saes = [.. saes];
        _tokenizer = model.Tokenizer as GemmaTokenizer
            ?? throw new ArgumentException($"Model '{model.ModelPath}' has no Gemma tokenizer (tokenizer.model or tokenizer.json in its folder); a scan tokenizes the corpus with it.", nameof(model));
        if (_saes.Length == 0)
        {
            throw new ArgumentException("At least one SAE is needed.", nameof(saes));
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sae in _saes)
        {
            if (!names.Add(sae.Name))
            {
                throw new ArgumentException($"Two SAEs are named '{sae.Name}'; give each a distinct name.", nameof(saes));
            }

            if (sae.Hook.Layer >= model.LayerCount)
            {
                throw new ArgumentException($"SAE '{sae.Source}' reads {sae.Hook.Name}, but model '{model.ModelPath}' has only {model.LayerCount} layers (0–{model.LayerCount - 1}).", nameof(saes));
            }

            int width;
            try
            {
                width = model.Width(sae.Hook);
            }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException or NotSupportedException or InvalidOperationException)
            {
                throw new ArgumentException($"SAE '{sae.Source}' reads {sae.Hook.Name}, which model '{model.ModelPath}' does not provide: {e.Message}", nameof(saes), e);
            }

            if (width != sae.InputSize)
            {
                throw new ArgumentException($"SAE '{sae.Source}' expects {sae.InputSize}-wide inputs, but {sae.Hook.Name} of model '{model.ModelPath}' is {width} wide.", nameof(saes));
            }
        }
    }

    /// <summary>Called after each batch with its index (after any checkpoint of it). For tools and tests.</summary>
    public Action<long>? BatchCompleted { get; init; }

    /// <summary>The options.</summary>
    public ScanOptions Options => _options;

    private ContextPlan Plan => _plan ??= ContextPlan.Count(_corpus, _tokenizer, _options);

    /// <summary>Batches in the corpus (tokenizes the corpus once to count it).</summary>
    public long BatchCount => Plan.Batches;

    /// <summary>The part folder name for shard <paramref name="shard"/> of <paramref name="shards"/>.</summary>
    public static string PartName(int shard, int shards) =>
        string.Create(CultureInfo.InvariantCulture, $"part-{shard:D5}-of-{shards:D5}");

    /// <summary>
    /// Runs shard <paramref name="shard"/> of <paramref name="shards"/> into <paramref name="partDir"/>, resuming from its
    /// newest checkpoint. Writes <c>_SUCCESS</c> when done; a part that is already complete is left as it is.
    /// The corpus is read and validated in full before anything is written.
    /// </summary>
    /// <exception cref="CorpusFormatException">The corpus is malformed or empty.</exception>
    /// <exception cref="InvalidDataException">The folder holds a part of a different scan.</exception>
    public ShardSummary RunShard(string partDir, int shard, int shards, IProgress<ScanProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partDir);
        if (shards < 1 || shard < 0 || shard >= shards)
        {
            throw new ArgumentOutOfRangeException(nameof(shard), $"Shard {shard} of {shards}: need 0 ≤ shard < shards.");
        }

        var wall = Stopwatch.StartNew();
        var plan = Plan;
        var (start, end) = plan.ShardRange(shard, shards);
        var fresh = NewState(plan, shard, shards, start, end);
        ScanState state = fresh;
        long next = start;
        var latest = PartStore.Latest(partDir);
        if (latest is not null)
        {
            var saved = PartStore.Read(latest);
            var why = fresh.Manifest.Incompatibility(saved.Manifest);
            if (why is null && (saved.Manifest.Shard is not { } sh || sh.Index != shard || sh.Count != shards))
            {
                why = $"it is shard {saved.Manifest.Shard?.Index} of {saved.Manifest.Shard?.Count}, not {shard} of {shards}";
            }

            if (why is not null)
            {
                throw new InvalidDataException($"'{partDir}' holds a part of another scan: {why}. Use another output folder or delete it.");
            }

            state = saved;
            next = saved.Manifest.Shard!.Next;
            if (PartStore.IsComplete(partDir) && next == end)
            {
                return Summary(state, shard, shards, start, end, 0, wall.Elapsed, resumedFrom: next);
            }
        }
        else if (PartStore.IsComplete(partDir))
        {
            File.Delete(Path.Combine(partDir, PartStore.Success));
        }

        long resumedFrom = next;
        var hooks = _saes.Select(s => s.Hook).Distinct().ToArray();
        long tokensTotal = plan.TokensIn(start, end, _options);
        long tokensDone = plan.TokensIn(start, next, _options);
        long tokensThisRun = 0;
        var rate = Stopwatch.StartNew();
        var buffers = new float[_saes.Length][];
        foreach (var (index, contexts) in plan.Read(_corpus, _tokenizer, _options, next, end))
        {
            cancellationToken.ThrowIfCancellationRequested();
            ProcessBatch(state, index, contexts, hooks, buffers);
            long batchTokens = 0;
            foreach (var c in contexts)
            {
                batchTokens += c.Length - 1;
            }

            tokensDone += batchTokens;
            tokensThisRun += batchTokens;
            next = index + 1;
            if ((next - start) % _options.CheckpointEveryBatches == 0 && next < end)
            {
                Checkpoint(partDir, state, next);
            }

            if (progress is not null)
            {
                double perSecond = tokensThisRun / Math.Max(1e-9, rate.Elapsed.TotalSeconds);
                var left = perSecond > 0 ? TimeSpan.FromSeconds(Math.Min(1e7, (tokensTotal - tokensDone) / perSecond)) : TimeSpan.Zero;
                progress.Report(new ScanProgress(tokensDone, tokensTotal, perSecond, left, next - start, end - start));
            }

            BatchCompleted?.Invoke(index);
        }

        if (next != end)
        {
            throw new InvalidOperationException($"Internal error: shard {shard} of {shards} stopped at batch {next}, expected {end}.");
        }

        var gen = Checkpoint(partDir, state, end);
        PartStore.MarkSuccess(partDir, gen);
        return Summary(state, shard, shards, start, end, tokensThisRun, wall.Elapsed, resumedFrom);
    }

    /// <summary>Scans the whole corpus in this process (one shard of one) and writes the tables and the dashboard into <paramref name="outDir"/>.</summary>
    public ScanResult Run(string outDir, IProgress<ScanProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outDir);
        var wall = Stopwatch.StartNew();
        var part = Path.Combine(outDir, "parts", PartName(0, 1));
        RunShard(part, 0, 1, progress, cancellationToken);
        return MergeCore([part], outDir, _model, _saes, _options, wall);
    }

    /// <summary>
    /// Folds finished parts (any set with disjoint batch ranges, any order) and writes the tables, the dashboard and
    /// the merged state into <paramref name="outDir"/>. The result equals a single-process scan over the same batches.
    /// </summary>
    /// <param name="partDirs">Part folders (each with <c>_SUCCESS</c>), or folders holding part folders.</param>
    /// <param name="outDir">Where to write.</param>
    /// <param name="model">The model, for token strings and the logit lens; null: token ids only, no logit lens.</param>
    /// <param name="saes">The SAEs, for the logit lens; null or empty: no logit lens.</param>
    /// <param name="options">Display options (bins, logit-lens size, dead threshold); scan options come from the parts.</param>
    /// <exception cref="InvalidDataException">A part is unfinished, parts disagree, or their ranges overlap.</exception>
    public static ScanResult Merge(IEnumerable<string> partDirs, string outDir, GemmaModel? model = null, IReadOnlyList<ScanSae>? saes = null, ScanOptions? options = null) =>
        MergeCore(partDirs, outDir, model, saes, options ?? new ScanOptions(), Stopwatch.StartNew());

    private static ScanResult MergeCore(IEnumerable<string> partDirs, string outDir, GemmaModel? model, IReadOnlyList<ScanSae>? saes, ScanOptions options, Stopwatch wall)
    {
        ArgumentNullException.ThrowIfNull(partDirs);
        ArgumentNullException.ThrowIfNull(outDir);
        var parts = ExpandParts(partDirs);
        if (parts.Count == 0)
        {
            throw new InvalidDataException("No parts to merge (no folder with a state generation was given).");
        }

        ScanState? merged = null;
        string? firstPart = null;
        var coverage = new List<(long Start, long End, string Part)>();
        foreach (var part in parts)
        {
            var st = PartStore.Read(PartStore.CompleteGeneration(part));
            foreach (var r in st.Manifest.Coverage)
            {
                coverage.Add((r[0], r[1], part));
            }

            if (merged is null)
            {
                merged = st;
                firstPart = part;
                continue;
            }

            var why = merged.Manifest.Incompatibility(st.Manifest);
            if (why is not null)
            {
                throw new InvalidDataException($"Parts '{firstPart}' and '{part}' are of different scans: {why}.");
            }

            for (int s = 0; s < merged.Saes.Length; s++)
            {
                merged.Saes[s].Add(st.Saes[s], merged.Manifest.TopK, merged.Manifest.QuantileGroups * merged.Manifest.ExamplesPerGroup);
            }

            merged.TokensCounted += st.TokensCounted;
        }

        coverage.Sort((a, b) => a.Start.CompareTo(b.Start));
        var ranges = new List<long[]>();
        for (int i = 0; i < coverage.Count; i++)
        {
            if (i > 0 && coverage[i].Start < coverage[i - 1].End)
            {
                throw new InvalidDataException($"Parts '{coverage[i - 1].Part}' and '{coverage[i].Part}' overlap (batches [{coverage[i - 1].Start}, {coverage[i - 1].End}) and [{coverage[i].Start}, {coverage[i].End})): merging them would count batches twice.");
            }

            if (coverage[i].Start == coverage[i].End)
            {
                continue;
            }

            if (ranges.Count > 0 && ranges[^1][1] == coverage[i].Start)
            {
                ranges[^1][1] = coverage[i].End;
            }
            else
            {
                ranges.Add([coverage[i].Start, coverage[i].End]);
            }
        }

        merged!.Manifest = merged.Manifest with { Coverage = [.. ranges], Shard = null, TokensCounted = merged.TokensCounted };
        Directory.CreateDirectory(outDir);
        var stateDir = Path.Combine(outDir, "state");
        if (Directory.Exists(stateDir))
        {
            Directory.Delete(stateDir, recursive: true);
        }

        var gen = PartStore.WriteGeneration(stateDir, merged, merged.Manifest.Batches);
        PartStore.MarkSuccess(stateDir, gen);
        return ScanOutput.Write(merged, outDir, model, saes, options, parts.Count, wall);
    }

    /// <summary>The manifest of the first finished part among <paramref name="partDirs"/> (what model and SAEs it was made with).</summary>
    /// <exception cref="InvalidDataException">No finished part.</exception>
    public static ScanManifest ReadManifest(IEnumerable<string> partDirs)
    {
        var parts = ExpandParts(partDirs);
        if (parts.Count == 0)
        {
            throw new InvalidDataException("No parts given.");
        }

        return PartStore.Read(PartStore.CompleteGeneration(parts[0])).Manifest;
    }

    private static List<string> ExpandParts(IEnumerable<string> dirs)
    {
        var result = new List<string>();
        foreach (var d in dirs)
        {
            var full = Path.GetFullPath(d);
            if (!Directory.Exists(full))
            {
                throw new DirectoryNotFoundException($"Part folder '{full}' does not exist.");
            }

            if (Directory.GetDirectories(full, "gen-*").Length > 0 || File.Exists(Path.Combine(full, PartStore.Success)))
            {
                result.Add(full);
                continue;
            }

            var inner = Directory.GetDirectories(full).Where(p => Directory.GetDirectories(p, "gen-*").Length > 0 || File.Exists(Path.Combine(p, PartStore.Success))).ToArray();
            if (inner.Length == 0)
            {
                throw new InvalidDataException($"'{full}' is neither a part (gen-* folders, {PartStore.Success}) nor a folder of parts.");
            }

            Array.Sort(inner, StringComparer.Ordinal);
            result.AddRange(inner);
        }

        return result;
    }

    private ScanState NewState(ContextPlan plan, int shard, int shards, long start, long end) => new()
    {
        Manifest = new ScanManifest
        {
            CorpusFingerprint = plan.Fingerprint.ToString("x16", CultureInfo.InvariantCulture),
            CorpusFiles = [.. _corpus.Files],
            Model = _model.ModelPath,
            StreamTokens = plan.StreamTokens,
            Contexts = plan.Contexts,
            Batches = plan.Batches,
            ContextLength = _options.ContextLength,
            BatchSize = _options.BatchSize,
            TopK = _options.TopK,
            QuantileGroups = _options.QuantileGroups,
            ExamplesPerGroup = _options.ExamplesPerGroup,
            ExampleWindow = _options.ExampleWindow,
            SampleSeed = _options.SampleSeed,
            Saes = [.. _saes.Select(s => new ManifestSae(s.Name, s.Hook.Name, s.FeatureCount, s.Source, s.NeuronpediaId))],
            Coverage = [[start, start]],
            TokensCounted = 0,
            Shard = new ManifestShard(shard, shards, start, end, start),
        },
        Saes = [.. _saes.Select(s => new SaeStats(s.FeatureCount))],
    };

    private static string Checkpoint(string partDir, ScanState state, long next)
    {
        var sh = state.Manifest.Shard!;
        state.Manifest = state.Manifest with { Shard = sh with { Next = next }, Coverage = [[sh.Start, next]], TokensCounted = state.TokensCounted };
        return PartStore.WriteGeneration(partDir, state, next);
    }

    private ShardSummary Summary(ScanState state, int shard, int shards, long start, long end, long tokensThisRun, TimeSpan wall, long resumedFrom) =>
        new(shard, shards, start, end, resumedFrom, state.TokensCounted, tokensThisRun, wall,
            [.. state.Saes.Select(s => s.Bytes())]);

    private void ProcessBatch(ScanState state, long batchIndex, int[][] contexts, HookPoint[] hooks, float[][] buffers)
    {
        var run = _model.RunBatch(contexts, capture: hooks, logits: false);
        int rows = 0;
        foreach (var c in contexts)
        {
            rows += c.Length;
        }

        for (int si = 0; si < _saes.Length; si++)
        {
            var sae = _saes[si];
            int d = sae.InputSize;
            var buf = buffers[si];
            if (buf is null || buf.Length < rows * d)
            {
                buf = buffers[si] = new float[rows * d];
            }

            int offset = 0;
            for (int s = 0; s < contexts.Length; s++)
            {
                var acts = run.Activations(sae.Hook, s);
                acts.CopyTo(buf.AsSpan(offset));
                offset += acts.Length;
            }

            var sparse = sae.Encode(buf.AsMemory(0, rows * d));
            Accumulate(state.Saes[si], sparse, contexts, batchIndex);
        }

        long counted = 0;
        foreach (var c in contexts)
        {
            foreach (var id in c)
            {
                if (!IsSpecial(id))
                {
                    counted++;
                }
            }
        }

        state.TokensCounted += counted;
    }

    private bool IsSpecial(int id) => id == _tokenizer.BeginningOfSentenceId || id == _tokenizer.EndOfSentenceId || id == _tokenizer.PaddingId;

    // The streaming update: per counted token and active feature, exact count, fixed-point sum, max, fine histogram,
    // then the top-k and the sample (both reject in O(1) once full).
    private void Accumulate(SaeStats st, SparseFeatureBatch sparse, int[][] contexts, long batchIndex)
    {
        var offsets = sparse.Offsets;
        var indices = sparse.Indices;
        var values = sparse.Values;
        int k = _options.TopK, sampleSize = _options.SampleSize, length = _options.ContextLength;
        ulong seed = _options.SampleSeed;
        int row = 0;
        for (int s = 0; s < contexts.Length; s++)
        {
            var ctx = contexts[s];
            long contextIndex = batchIndex * _options.BatchSize + s;
            for (int t = 0; t < ctx.Length; t++)
            {
                if (IsSpecial(ctx[t]))
                {
                    continue;
                }

                long global = contextIndex * length + t;
                int r = row + t;
                for (int j = offsets[r]; j < offsets[r + 1]; j++)
                {
                    int f = indices[j];
                    float v = values[j];
                    st.Count[f]++;
                    st.Sum[f] += SaeStats.Fixed(v);
                    if (v > st.Max[f])
                    {
                        st.Max[f] = v;
                    }

                    st.Hist[(f * FineHistogram.Buckets) + FineHistogram.Bucket(v)]++;
                    var ex = st.Examples[f] ??= new FeatureExamples();
                    ulong p = Priority(seed, f, global);
                    bool top = ex.TopWants(v, global, k), sample = ex.SampleWants(p, global, sampleSize);
                    if (top || sample)
                    {
                        var e = MakeExample(sparse, ctx, row, t, f, v, global, p);
                        if (top)
                        {
                            ex.AddTop(e, k);
                        }

                        if (sample)
                        {
                            ex.AddSample(e, sampleSize);
                        }
                    }
                }
            }

            row += ctx.Length;
        }
    }

    /// <summary>SplitMix64 of the seed, feature and corpus position: the uniform sample's priority.</summary>
    internal static ulong Priority(ulong seed, int feature, long global)
    {
        ulong z = seed + (unchecked((ulong)global) * 0x9E3779B97F4A7C15UL) + ((ulong)(uint)feature * 0xC2B2AE3D27D4EB4FUL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private Example MakeExample(SparseFeatureBatch sparse, int[] ctx, int row, int t, int f, float v, long global, ulong p)
    {
        int w = _options.ExampleWindow;
        int before = w * 3 / 4;
        int start = Math.Max(0, Math.Min(t - before, ctx.Length - w));
        int n = Math.Min(w, ctx.Length - start);
        var tokens = ctx.AsSpan(start, n).ToArray();
        var vals = new float[n];
        var offsets = sparse.Offsets;
        var indices = sparse.Indices;
        for (int i = 0; i < n; i++)
        {
            if (IsSpecial(tokens[i]))
            {
                continue;
            }

            int r = row + start + i;
            int lo = offsets[r], hi = offsets[r + 1];
            int at = indices[lo..hi].BinarySearch(f);
            if (at >= 0)
            {
                vals[i] = sparse.Values[lo + at];
            }
        }

        return new Example { Value = v, Global = global, Priority = p, WindowStart = start, Tokens = tokens, Values = vals };
    }
}

/// <summary>What one shard run did.</summary>
/// <param name="Shard">Shard index.</param>
/// <param name="Shards">Shard count.</param>
/// <param name="StartBatch">First batch of the shard.</param>
/// <param name="EndBatch">End batch (exclusive).</param>
/// <param name="ResumedFromBatch">The batch this run started at (= StartBatch when not resumed).</param>
/// <param name="TokensCounted">Tokens counted in the shard (not BOS/EOS/pad).</param>
/// <param name="TokensThisRun">Corpus tokens processed by this run.</param>
/// <param name="Wall">Wall time of this run.</param>
/// <param name="StateBytes">Bytes held per SAE at the end.</param>
public sealed record ShardSummary(int Shard, int Shards, long StartBatch, long EndBatch, long ResumedFromBatch, long TokensCounted, long TokensThisRun, TimeSpan Wall, long[] StateBytes);
