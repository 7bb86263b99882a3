using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace GemmaScope.Hf;

/// <summary>
/// The compiled-in catalog of Gemma Scope (Gemma 2) releases, with the release and SAE id names that Gemma Scope and SAELens use.
/// </summary>
/// <remarks>
/// <para>
/// Compiled in: every release's repository, model, hook site and widths, and the full list of <c>average_l0_N</c> folders,
/// the canonical picks and the Neuronpedia ids as SAELens's <c>pretrained_saes.yaml</c> lists them
/// (commit <see cref="SaeLensSourceCommit"/>). Folders the hub gained since are found at run time through
/// <see cref="GemmaScopeHubClient.ResolveAsync"/> and <see cref="GemmaScopeHubClient.ListSaeIdsAsync"/>.
/// </para>
/// <para>
/// A <c>-canonical</c> id points at the folder's <c>average_l0_N</c> with N closest to 100, as chosen by SAELens (its choice is
/// kept where two N tie). Where SAELens lists no canonical id for a folder that exists (2B res layer 12 width 131k, 9B res layer 20
/// width 262k) the alias is derived by that rule (ties to the smaller N) and has no Neuronpedia id. Embedding SAEs have no canonical alias.
/// </para>
/// <para>Immutable; thread-safe.</para>
/// </remarks>
public static class GemmaScopeCatalog
{
    private const string DataResource = "GemmaScope.Hf.Catalog.catalog.tsv.gz";

    // Read on first use: the catalog is data (catalog.tsv.gz, made by the generator in the Hf tests from SAELens's registry).
    private static readonly Lazy<CatalogContents> Data = new(Load);

    private static Dictionary<string, GemmaScopeRelease> ByName => Data.Value.ByName;

    /// <summary>The SAELens commit whose <c>pretrained_saes.yaml</c> the folder lists were taken from.</summary>
    public static string SaeLensSourceCommit => Data.Value.Commit;

    /// <summary>
    /// All releases: Gemma Scope's eight SAE releases and its transcoders (<c>gemma-scope-2b-pt-transcoders</c>), the eight
    /// <c>-canonical</c> aliases, then Gemma Scope 2's 75 releases (<c>gemma-scope-2-270m-pt-res</c> … <c>gemma-scope-2-27b-it-transcoders-all</c>).
    /// </summary>
    public static IReadOnlyList<GemmaScopeRelease> Releases => Data.Value.Ordered;

    /// <summary>The release with this SAELens name, e.g. <c>gemma-scope-2b-pt-res</c>.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the closest release names.</exception>
    public static GemmaScopeRelease GetRelease(string release)
    {
        ArgumentNullException.ThrowIfNull(release);
        if (ByName.TryGetValue(release, out var found))
        {
            return found;
        }

        throw new ArgumentException(
            $"Unknown Gemma Scope release '{release}'.{NameSuggestions.DidYouMean(release, ByName.Keys, 3)}", nameof(release));
    }

    /// <summary>Looks a release up without throwing.</summary>
    public static bool TryGetRelease(string release, [NotNullWhen(true)] out GemmaScopeRelease? found)
    {
        ArgumentNullException.ThrowIfNull(release);
        return ByName.TryGetValue(release, out found);
    }

    /// <summary>The compiled-in SAE <paramref name="saeId"/> of <paramref name="release"/>, e.g. (<c>gemma-scope-2b-pt-res-canonical</c>, <c>layer_20/width_16k/canonical</c>).</summary>
    /// <exception cref="ArgumentException">Unknown release or id; the message lists the closest names.</exception>
    public static GemmaScopeSae GetSae(string release, string saeId) => GetRelease(release).GetSae(saeId);

    /// <summary>The Neuronpedia page of one feature: <c>https://www.neuronpedia.org/{neuronpediaId}/{feature}</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="neuronpediaId"/> is not of the form <c>model/set</c>.</exception>
    public static Uri NeuronpediaFeatureUrl(string neuronpediaId, int feature)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(neuronpediaId);
        ArgumentOutOfRangeException.ThrowIfNegative(feature);
        var slash = neuronpediaId.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == neuronpediaId.Length - 1 || neuronpediaId.IndexOf('/', slash + 1) >= 0)
        {
            throw new ArgumentException(
                $"Neuronpedia id '{neuronpediaId}' must look like 'gemma-2-2b/20-gemmascope-res-16k'.", nameof(neuronpediaId));
        }

        return new Uri(string.Create(CultureInfo.InvariantCulture, $"https://www.neuronpedia.org/{neuronpediaId}/{feature}"));
    }

    private sealed record CatalogContents(string Commit, IReadOnlyList<GemmaScopeRelease> Ordered, Dictionary<string, GemmaScopeRelease> ByName);

    // One parser for the one format: "commit\t…", then "R\t…" release rows, each followed by its "S\t…" SAE rows; '#' lines are comments.
    private static CatalogContents Load()
    {
        using var resource = typeof(GemmaScopeCatalog).Assembly.GetManifestResourceStream(DataResource)
            ?? throw new InvalidOperationException($"The catalog resource '{DataResource}' is missing from GemmaScope.Hf.");
        using var reader = new StreamReader(new GZipStream(resource, CompressionMode.Decompress), Encoding.UTF8);
        string? commit = null;
        var ordered = new List<GemmaScopeRelease>();
        var byName = new Dictionary<string, GemmaScopeRelease>(StringComparer.Ordinal);
        GemmaScopeRelease? release = null;
        var saes = new List<GemmaScopeSae>();
        int lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var f = line.Split('\t');
            switch (f[0])
            {
                case "commit" when f.Length == 2:
                    commit = f[1];
                    break;
                case "R" when f.Length == 11:
                    release?.SetSaes(saes);
                    saes = [];
                    release = new GemmaScopeRelease(
                        f[1], f[2], f[3], Enum.Parse<SaeSite>(f[6]), Int(f[7]), Int(f[8]), Int(f[9]), isCanonical: f[10] == "1",
                        scopeVersion: Int(f[5]), modelRepoId: f[4]);
                    ordered.Add(release);
                    byName.Add(release.Name, release);
                    break;
                case "S" when f.Length == 7 && release is not null:
                    saes.Add(new GemmaScopeSae(
                        release, f[1], f[2], f[3].Length == 0 ? null : Int(f[3]), f[4], Int(f[5]), f[6].Length == 0 ? null : f[6], isCompiledIn: true));
                    break;
                default:
                    throw new InvalidDataException($"Catalog data ({DataResource}) line {lineNo} is malformed: '{line}'.");
            }
        }

        release?.SetSaes(saes);
        return new CatalogContents(
            commit ?? throw new InvalidDataException($"Catalog data ({DataResource}) names no SAELens commit."), ordered.AsReadOnly(), byName);
    }

    private static int Int(string s) => int.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>The index of the N closest to 100, the smaller N on a tie.</summary>
    internal static int ClosestTo100(IReadOnlyList<int> numbers)
    {
        var best = 0;
        for (var i = 1; i < numbers.Count; i++)
        {
            var d = Math.Abs(numbers[i] - 100);
            var bestD = Math.Abs(numbers[best] - 100);
            if (d < bestD || (d == bestD && numbers[i] < numbers[best]))
            {
                best = i;
            }
        }

        return best;
    }
}
