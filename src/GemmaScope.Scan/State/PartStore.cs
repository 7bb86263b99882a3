using System.Globalization;
using System.Text.Json;
using Parquet.Serialization;

namespace GemmaScope.Scan;

/// <summary>
/// A part on disk: a folder with generation folders <c>gen-NNNNNNNNNNNN</c> (named by the next batch to run), each
/// complete or absent (written as <c>.tmp-*</c> and renamed), and <c>_SUCCESS</c> once the shard is done (written to a
/// temporary file and renamed, naming the final generation). A kill at any instant leaves the newest complete
/// generation to resume from; nothing is counted twice because a generation holds exactly the batches before its number.
/// </summary>
internal static class PartStore
{
    public const string Success = "_SUCCESS";
    public const string StateFile = "state.json";
    public const string FeaturesFile = "feature_state.parquet";
    public const string ExamplesFile = "example_state.parquet";

    /// <summary>Internal feature-state row (lossless).</summary>
    public sealed class FeatureRow
    {
        public int Sae { get; set; }

        public int Feature { get; set; }

        public long FireCount { get; set; }

        public long SumHi { get; set; }

        public long SumLo { get; set; }

        public float Max { get; set; }

        public int[] HistBucket { get; set; } = [];

        public long[] HistCount { get; set; } = [];
    }

    /// <summary>Internal example-state row (lossless).</summary>
    public sealed class ExampleRow
    {
        public int Sae { get; set; }

        public int Feature { get; set; }

        public int Kind { get; set; }

        public float Value { get; set; }

        public long Global { get; set; }

        public long Priority { get; set; }

        public int WindowStart { get; set; }

        public int[] Tokens { get; set; } = [];

        public float[] Values { get; set; } = [];
    }

    public static string GenerationName(long next) => "gen-" + next.ToString("D12", CultureInfo.InvariantCulture);

    /// <summary>The newest complete generation folder, or null; removes temporary leftovers.</summary>
    public static string? Latest(string partDir)
    {
        if (!Directory.Exists(partDir))
        {
            return null;
        }

        foreach (var tmp in Directory.GetDirectories(partDir, ".tmp-*"))
        {
            Directory.Delete(tmp, recursive: true);
        }

        var gens = Directory.GetDirectories(partDir, "gen-*");
        Array.Sort(gens, StringComparer.Ordinal);
        return gens.Length == 0 ? null : gens[^1];
    }

    public static bool IsComplete(string partDir) => File.Exists(Path.Combine(partDir, Success));

    /// <summary>Writes a generation atomically, then deletes older ones.</summary>
    public static string WriteGeneration(string partDir, ScanState state, long next)
    {
        Directory.CreateDirectory(partDir);
        var tmp = Path.Combine(partDir, ".tmp-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(tmp);
        Write(tmp, state);
        var final = Path.Combine(partDir, GenerationName(next));
        if (Directory.Exists(final))
        {
            Directory.Delete(final, recursive: true);
        }

        Directory.Move(tmp, final);
        foreach (var old in Directory.GetDirectories(partDir, "gen-*"))
        {
            if (string.CompareOrdinal(Path.GetFileName(old), Path.GetFileName(final)) < 0)
            {
                Directory.Delete(old, recursive: true);
            }
        }

        return final;
    }

    public static void MarkSuccess(string partDir, string generation)
    {
        var tmp = Path.Combine(partDir, ".success-" + Guid.NewGuid().ToString("N"));
        File.WriteAllText(tmp, Path.GetFileName(generation) + "\n");
        File.Move(tmp, Path.Combine(partDir, Success), overwrite: true);
    }

    /// <summary>The generation a complete part names.</summary>
    public static string CompleteGeneration(string partDir)
    {
        var marker = Path.Combine(partDir, Success);
        if (!File.Exists(marker))
        {
            throw new InvalidDataException($"Part '{partDir}' has no {Success}: the shard did not finish (rerun it to resume).");
        }

        var gen = Path.Combine(partDir, File.ReadAllText(marker).Trim());
        if (!Directory.Exists(gen))
        {
            throw new InvalidDataException($"Part '{partDir}': {Success} names '{Path.GetFileName(gen)}', which is missing.");
        }

        return gen;
    }

    /// <summary>Writes the state files into a folder (state.json last).</summary>
    public static void Write(string dir, ScanState state)
    {
        var features = new List<FeatureRow>();
        var examples = new List<ExampleRow>();
        for (int s = 0; s < state.Saes.Length; s++)
        {
            var st = state.Saes[s];
            for (int f = 0; f < st.Features; f++)
            {
                if (st.Count[f] == 0)
                {
                    continue;
                }

                var hist = st.HistOf(f);
                var buckets = new List<int>();
                var counts = new List<long>();
                for (int b = 0; b < hist.Length; b++)
                {
                    if (hist[b] != 0)
                    {
                        buckets.Add(b);
                        counts.Add(hist[b]);
                    }
                }

                var sum = st.Sum[f];
                features.Add(new FeatureRow
                {
                    Sae = s,
                    Feature = f,
                    FireCount = st.Count[f],
                    SumHi = (long)(sum >> 64),
                    SumLo = (long)(ulong)(sum & ulong.MaxValue),
                    Max = st.Max[f],
                    HistBucket = [.. buckets],
                    HistCount = [.. counts],
                });
                var ex = st.Examples[f];
                if (ex is null)
                {
                    continue;
                }

                foreach (var (list, kind) in new[] { (ex.Top, 0), (ex.Sample, 1) })
                {
                    foreach (var e in list)
                    {
                        examples.Add(new ExampleRow
                        {
                            Sae = s,
                            Feature = f,
                            Kind = kind,
                            Value = e.Value,
                            Global = e.Global,
                            Priority = unchecked((long)e.Priority),
                            WindowStart = e.WindowStart,
                            Tokens = e.Tokens,
                            Values = e.Values,
                        });
                    }
                }
            }
        }

        ParquetSerializer.SerializeAsync(features, Path.Combine(dir, FeaturesFile)).GetAwaiter().GetResult();
        ParquetSerializer.SerializeAsync(examples, Path.Combine(dir, ExamplesFile)).GetAwaiter().GetResult();
        var manifest = state.Manifest with { TokensCounted = state.TokensCounted };
        File.WriteAllText(Path.Combine(dir, StateFile), JsonSerializer.Serialize(manifest, ScanManifest.Json));
    }

    /// <summary>Reads the state files of a generation folder.</summary>
    public static ScanState Read(string dir)
    {
        var statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath))
        {
            throw new InvalidDataException($"'{dir}' has no {StateFile}: not a scan part.");
        }

        var manifest = JsonSerializer.Deserialize<ScanManifest>(File.ReadAllText(statePath), ScanManifest.Json)
            ?? throw new InvalidDataException($"'{statePath}' is empty.");
        var saes = manifest.Saes.Select(s => new SaeStats(s.Features)).ToArray();
        foreach (var r in ParquetSerializer.DeserializeAsync<FeatureRow>(Path.Combine(dir, FeaturesFile)).GetAwaiter().GetResult().Data)
        {
            var st = saes[r.Sae];
            st.Count[r.Feature] = r.FireCount;
            st.Sum[r.Feature] = ((Int128)r.SumHi << 64) | (Int128)(ulong)r.SumLo;
            st.Max[r.Feature] = r.Max;
            var h = st.HistOf(r.Feature);
            for (int i = 0; i < r.HistBucket.Length; i++)
            {
                h[r.HistBucket[i]] = r.HistCount[i];
            }
        }

        foreach (var r in ParquetSerializer.DeserializeAsync<ExampleRow>(Path.Combine(dir, ExamplesFile)).GetAwaiter().GetResult().Data)
        {
            var ex = saes[r.Sae].Examples[r.Feature] ??= new FeatureExamples();
            var e = new Example { Value = r.Value, Global = r.Global, Priority = unchecked((ulong)r.Priority), WindowStart = r.WindowStart, Tokens = r.Tokens, Values = r.Values };
            (r.Kind == 0 ? ex.Top : ex.Sample).Add(e); // written in order
        }

        return new ScanState { Manifest = manifest, Saes = saes, TokensCounted = manifest.TokensCounted };
    }
}
