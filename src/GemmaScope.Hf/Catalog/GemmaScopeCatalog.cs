using System.Diagnostics.CodeAnalysis;
using System.Globalization;

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
    private const string CanonicalSuffix = "-canonical";

    private static readonly Lazy<Dictionary<string, GemmaScopeRelease>> ByName = new(Build);
    private static readonly Lazy<IReadOnlyList<GemmaScopeRelease>> Ordered = new(() =>
        CatalogData.Releases.Select(r => ByName.Value[r.Release])
            .Concat(CatalogData.Releases.Where(r => HasCanonical(r.Release)).Select(r => ByName.Value[r.Release + CanonicalSuffix]))
            .Concat(CatalogData2.Releases.Select(r => ByName.Value[r.Release])).ToList().AsReadOnly());

    /// <summary>The SAELens commit whose <c>pretrained_saes.yaml</c> the folder lists were taken from.</summary>
    public static string SaeLensSourceCommit => CatalogData.SaeLensCommit;

    /// <summary>
    /// All releases: Gemma Scope's eight SAE releases and its transcoders (<c>gemma-scope-2b-pt-transcoders</c>), the eight
    /// <c>-canonical</c> aliases, then Gemma Scope 2's 75 releases (<c>gemma-scope-2-270m-pt-res</c> … <c>gemma-scope-2-27b-it-transcoders-all</c>).
    /// </summary>
    public static IReadOnlyList<GemmaScopeRelease> Releases => Ordered.Value;

    /// <summary>The release with this SAELens name, e.g. <c>gemma-scope-2b-pt-res</c>.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the closest release names.</exception>
    public static GemmaScopeRelease GetRelease(string release)
    {
        ArgumentNullException.ThrowIfNull(release);
        if (ByName.Value.TryGetValue(release, out var found))
        {
            return found;
        }

        throw new ArgumentException(
            $"Unknown Gemma Scope release '{release}'.{NameSuggestions.DidYouMean(release, ByName.Value.Keys, 3)}", nameof(release));
    }

    /// <summary>Looks a release up without throwing.</summary>
    public static bool TryGetRelease(string release, [NotNullWhen(true)] out GemmaScopeRelease? found)
    {
        ArgumentNullException.ThrowIfNull(release);
        return ByName.Value.TryGetValue(release, out found);
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

    private static Dictionary<string, GemmaScopeRelease> Build()
    {
        var bases = new List<GemmaScopeRelease>();
        var canonicals = new List<GemmaScopeRelease>();
        foreach (var (name, folders) in CatalogData.Releases)
        {
            var (model, site, layers, dModel, dIn) = Shape(name);
            var release = new GemmaScopeRelease(name, "google/" + name, model, site, layers, dModel, dIn, isCanonical: false);
            var canonical = HasCanonical(name)
                ? new GemmaScopeRelease(name + CanonicalSuffix, "google/" + name, model, site, layers, dModel, dIn, isCanonical: true)
                : null;
            var saes = new List<GemmaScopeSae>();
            var aliases = new List<GemmaScopeSae>();
            foreach (var line in folders)
            {
                AddFolder(release, canonical, line, saes, aliases);
            }

            release.SetSaes(saes);
            bases.Add(release);
            if (canonical is not null)
            {
                canonical.SetSaes(aliases);
                canonicals.Add(canonical);
            }
        }

        foreach (var (name, modelRepo, folder, idHasFolder, lines) in CatalogData2.Releases)
        {
            bases.Add(Scope2Release(name, modelRepo, folder, idHasFolder, lines));
        }

        var all = new Dictionary<string, GemmaScopeRelease>(StringComparer.Ordinal);
        foreach (var release in bases.Concat(canonicals))
        {
            all.Add(release.Name, release);
        }

        return all;
    }

    // SAELens has no -canonical alias of the transcoder release.
    private static bool HasCanonical(string release) => !release.EndsWith("-transcoders", StringComparison.Ordinal);

    // One catalog line: "layer_20/width_16k:22,38,71*,139,294" ('*' = SAELens's canonical pick, 'n' = l0-specific Neuronpedia set,
    // 'p' = the plain Neuronpedia set, in a release without canonical aliases).
    private static void AddFolder(
        GemmaScopeRelease release, GemmaScopeRelease? canonical, string line, List<GemmaScopeSae> saes, List<GemmaScopeSae> aliases)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        var folder = line[..colon];
        var entries = line[(colon + 1)..].Split(',');
        var numbers = new int[entries.Length];
        var marked = -1;
        for (var i = 0; i < entries.Length; i++)
        {
            numbers[i] = int.Parse(entries[i].TrimEnd('*', 'n', 'p'), NumberStyles.None, CultureInfo.InvariantCulture);
            if (entries[i].Contains('*', StringComparison.Ordinal))
            {
                marked = i;
            }
        }

        var slash = folder.IndexOf('/', StringComparison.Ordinal);
        int? layer = folder.StartsWith("layer_", StringComparison.Ordinal)
            ? int.Parse(folder.AsSpan(6, slash - 6), NumberStyles.None, CultureInfo.InvariantCulture)
            : null;
        var width = folder[(slash + "/width_".Length)..];
        var plainNeuronpedia = layer is null
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"{release.ModelName}/{layer}-gemmascope-{NeuronpediaSite(release.Site)}-{width}");

        for (var i = 0; i < entries.Length; i++)
        {
            string? np = null;
            if (i == marked || entries[i].EndsWith('p'))
            {
                np = plainNeuronpedia;
            }
            else if (entries[i].Contains('n', StringComparison.Ordinal))
            {
                np = string.Create(CultureInfo.InvariantCulture, $"{plainNeuronpedia}__l0-{numbers[i]}");
            }

            var id = string.Create(CultureInfo.InvariantCulture, $"{folder}/average_l0_{numbers[i]}");
            saes.Add(new GemmaScopeSae(release, id, id, layer, width, numbers[i], np, isCompiledIn: true));
        }

        if (layer is null || canonical is null)
        {
            return; // SAELens has no canonical embedding SAE, and no canonical transcoders.
        }

        var pick = marked >= 0 ? marked : ClosestTo100(numbers);
        aliases.Add(new GemmaScopeSae(
            canonical,
            folder + "/canonical",
            string.Create(CultureInfo.InvariantCulture, $"{folder}/average_l0_{numbers[pick]}"),
            layer,
            width,
            numbers[pick],
            marked >= 0 ? plainNeuronpedia : null,
            isCompiledIn: true));
    }

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

    private static string NeuronpediaSite(SaeSite site) => site switch
    {
        SaeSite.ResidualStream => "res",
        SaeSite.AttentionOutput => "att",
        SaeSite.MlpOutput => "mlp",
        SaeSite.Transcoder => "transcoder",
        _ => throw new ArgumentOutOfRangeException(nameof(site)),
    };

    // A Gemma Scope 2 release: every id as SAELens lists it, the hub folder "{folder}/{id without folder}".
    // Lines are "layer_12_width_16k_l0_medium:60[:gemma-3-270m/12-gemmascope-2-res-16k]".
    private static GemmaScopeRelease Scope2Release(string name, string modelRepo, string folder, bool idHasFolder, string[] lines)
    {
        // gemma-scope-2-{size}-{pt|it}-{res|att|mlp|transcoders}[-all], in repository google/gemma-scope-2-{size}-{pt|it}.
        var parts = name.Split('-');
        var site = parts[5] switch
        {
            "res" => SaeSite.ResidualStream,
            "att" => SaeSite.AttentionOutput,
            "mlp" => SaeSite.MlpOutput,
            "transcoders" => SaeSite.Transcoder,
            _ => throw new InvalidOperationException($"Catalog data names an unexpected release '{name}'."),
        };

        // Gemma 3 shapes (Hugging Face configs): layers, d_model, heads × head_dim.
        var (layers, dModel, attIn) = parts[3] switch
        {
            "270m" => (18, 640, 4 * 256),
            "1b" => (26, 1152, 4 * 256),
            "4b" => (34, 2560, 8 * 256),
            "12b" => (48, 3840, 16 * 256),
            "27b" => (62, 5376, 32 * 128),
            _ => throw new InvalidOperationException($"Catalog data names an unexpected release '{name}'."),
        };
        var release = new GemmaScopeRelease(
            name, $"google/gemma-scope-2-{parts[3]}-{parts[4]}", modelRepo["google/".Length..], site, layers, dModel, site == SaeSite.AttentionOutput ? attIn : dModel,
            isCanonical: false, scopeVersion: 2, modelRepoId: modelRepo);
        var saes = new List<GemmaScopeSae>(lines.Length);
        foreach (var line in lines)
        {
            var fields = line.Split(':', 3);
            var tail = fields[0];
            var layerEnd = tail.IndexOf("_width_", StringComparison.Ordinal);
            var layer = int.Parse(tail.AsSpan("layer_".Length, layerEnd - "layer_".Length), NumberStyles.None, CultureInfo.InvariantCulture);
            var widthStart = layerEnd + "_width_".Length;
            var width = tail[widthStart..tail.IndexOf("_l0_", widthStart, StringComparison.Ordinal)];
            var l0 = int.Parse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture);
            var id = idHasFolder ? folder + "/" + tail : tail;
            saes.Add(new GemmaScopeSae(release, id, folder + "/" + tail, layer, width, l0, fields.Length > 2 ? fields[2] : null, isCompiledIn: true));
        }

        release.SetSaes(saes);
        return release;
    }

    // Gemma 2 shapes (Gemma Scope paper, HF configs): layers, d_model; attention SAEs read heads × head_dim.
    private static (string Model, SaeSite Site, int Layers, int DModel, int DIn) Shape(string release)
    {
        var kind = release[(release.LastIndexOf('-') + 1)..];
        var site = kind switch
        {
            "res" => SaeSite.ResidualStream,
            "att" => SaeSite.AttentionOutput,
            "mlp" => SaeSite.MlpOutput,
            "transcoders" => SaeSite.Transcoder,
            _ => throw new InvalidOperationException($"Catalog data names an unexpected release '{release}'."),
        };
        var (model, layers, dModel, attIn) = release["gemma-scope-".Length..^(kind.Length + 1)] switch
        {
            "2b-pt" => ("gemma-2-2b", 26, 2304, 8 * 256),
            "9b-pt" => ("gemma-2-9b", 42, 3584, 16 * 256),
            "27b-pt" => ("gemma-2-27b", 46, 4608, 32 * 128),
            "9b-it" => ("gemma-2-9b-it", 42, 3584, 16 * 256),
            _ => throw new InvalidOperationException($"Catalog data names an unexpected release '{release}'."),
        };
        return (model, site, layers, dModel, site == SaeSite.AttentionOutput ? attIn : dModel);
    }
}
