using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.RegularExpressions;

namespace GemmaScope.Hf;

/// <summary>
/// One Gemma Scope release as SAELens names it (<c>gemma-scope-2b-pt-res</c>, <c>gemma-scope-2b-pt-res-canonical</c> …):
/// the hub repository it lives in, the model and site it reads, and its SAEs.
/// </summary>
/// <remarks>Immutable; thread-safe.</remarks>
public sealed partial class GemmaScopeRelease
{
    private readonly Dictionary<string, GemmaScopeSae> _byId;

    internal GemmaScopeRelease(
        string name, string repoId, string modelName, SaeSite site, int layerCount, int modelDim, int inputSize, bool isCanonical,
        int scopeVersion = 1, string? modelRepoId = null)
    {
        Name = name;
        RepoId = repoId;
        ModelName = modelName;
        ModelRepoId = modelRepoId ?? "google/" + modelName;
        ScopeVersion = scopeVersion;
        Site = site;
        LayerCount = layerCount;
        ModelDim = modelDim;
        InputSize = inputSize;
        IsCanonical = isCanonical;
        _byId = new Dictionary<string, GemmaScopeSae>(StringComparer.Ordinal);
        Saes = [];
        SaeIds = [];
        Layers = [];
        Widths = [];
    }

    /// <summary>The SAELens release name, e.g. <c>gemma-scope-2b-pt-res</c>.</summary>
    public string Name { get; }

    /// <summary>The Hugging Face repository, e.g. <c>google/gemma-scope-2b-pt-res</c> (canonical releases share their base repository).</summary>
    public string RepoId { get; }

    /// <summary>
    /// The model's name: <c>gemma-2-2b</c>, <c>gemma-2-9b</c>, <c>gemma-2-27b</c> or <c>gemma-2-9b-it</c> (Gemma Scope, as SAELens and
    /// Neuronpedia write it), or the model repository's name for Gemma Scope 2 (<c>gemma-3-270m</c>, <c>gemma-3-4b-pt</c>, <c>gemma-3-1b-it</c> …).
    /// </summary>
    public string ModelName { get; }

    /// <summary>The Hugging Face repository of the model the SAEs were trained on, e.g. <c>google/gemma-2-2b</c> or <c>google/gemma-3-270m</c>.</summary>
    public string ModelRepoId { get; }

    /// <summary>1 for Gemma Scope (Gemma 2, <c>params.npz</c>), 2 for Gemma Scope 2 (Gemma 3, <c>params.safetensors</c> + <c>config.json</c>).</summary>
    public int ScopeVersion { get; }

    /// <summary>
    /// The catalog's kind of this release (embedding SAEs of <c>-pt-res</c> releases say <see cref="SaeSite.Embedding"/> themselves);
    /// each SAE's hook point is <see cref="GemmaScopeSae.Hook"/>.
    /// </summary>
    public SaeSite Site { get; }

    /// <summary>The number of layers of the model (26, 42 or 46); SAEs may exist for only some of them, see <see cref="Layers"/>.</summary>
    public int LayerCount { get; }

    /// <summary>The model's d_model: 2304, 3584 or 4608.</summary>
    public int ModelDim { get; }

    /// <summary>The d_in of the release's layer SAEs: d_model, or heads × head_dim (2048 on 2B, 4096 on 9B) for attention.</summary>
    public int InputSize { get; }

    /// <summary>True for the <c>-canonical</c> alias releases, whose ids end in <c>/canonical</c>.</summary>
    public bool IsCanonical { get; }

    /// <summary>The layers with at least one SAE in the compiled-in catalog, ascending.</summary>
    public IReadOnlyList<int> Layers { get; private set; }

    /// <summary>The widths present in the release, ascending (e.g. 4k, 16k, 65k, 1m).</summary>
    public IReadOnlyList<string> Widths { get; private set; }

    /// <summary>All SAE ids of the compiled-in catalog, in catalog order (layer, width, average_l0).</summary>
    public IReadOnlyList<string> SaeIds { get; private set; }

    /// <summary>All SAEs of the compiled-in catalog, in the order of <see cref="SaeIds"/>.</summary>
    public IReadOnlyList<GemmaScopeSae> Saes { get; private set; }

    /// <summary>The SAE with this id (e.g. <c>layer_20/width_16k/average_l0_71</c>).</summary>
    /// <exception cref="ArgumentException">The id is not in the release; the message lists the closest ids.</exception>
    public GemmaScopeSae GetSae(string saeId)
    {
        ArgumentNullException.ThrowIfNull(saeId);
        if (_byId.TryGetValue(saeId, out var sae))
        {
            return sae;
        }

        throw new ArgumentException(UnknownIdMessage(saeId, SaeIds), nameof(saeId));
    }

    /// <summary>Looks an SAE id up without throwing.</summary>
    public bool TryGetSae(string saeId, [NotNullWhen(true)] out GemmaScopeSae? sae)
    {
        ArgumentNullException.ThrowIfNull(saeId);
        return _byId.TryGetValue(saeId, out sae);
    }

    /// <inheritdoc/>
    public override string ToString() => Name;

    internal void SetSaes(List<GemmaScopeSae> saes)
    {
        foreach (var sae in saes)
        {
            _byId.Add(sae.Id, sae);
        }

        Saes = saes.AsReadOnly();
        SaeIds = saes.ConvertAll(s => s.Id).AsReadOnly();
        var layers = new SortedSet<int>();
        var widths = new SortedSet<int>();
        foreach (var sae in saes)
        {
            if (sae.Layer is int layer)
            {
                layers.Add(layer);
            }

            widths.Add(sae.FeatureCount);
        }

        Layers = layers.ToList().AsReadOnly();
        Widths = widths.Select(w => SaeWidths.NameOf(w)!).ToList().AsReadOnly();
    }

    /// <summary>Builds an entry for an <c>average_l0_N</c> folder found through the hub's file listing.</summary>
    internal GemmaScopeSae FromListing(SaeIdParts parts, string folder) =>
        new(this, parts.Id, folder, parts.Layer, parts.Width, parts.AverageL0!.Value, neuronpediaId: null, isCompiledIn: false);

    internal string UnknownIdMessage(string saeId, IEnumerable<string> candidates)
    {
        var hint = string.Empty;
        if (!IsCanonical && saeId.EndsWith("/canonical", StringComparison.Ordinal))
        {
            hint = $" Canonical ids belong to the release '{Name}-canonical'.";
        }
        else if (IsCanonical && saeId.Contains("/average_l0_", StringComparison.Ordinal))
        {
            hint = $" average_l0 ids belong to the release '{Name[..^"-canonical".Length]}'.";
        }

        return $"Gemma Scope release '{Name}' ({RepoId}) has no SAE '{saeId}'.{hint}{NameSuggestions.DidYouMean(saeId, candidates)}";
    }

    /// <summary>Splits an id such as <c>layer_20/width_16k/average_l0_71</c>; false when it does not have the Gemma Scope shape.</summary>
    internal bool TryParseId(string saeId, out SaeIdParts parts)
    {
        parts = default;
        if (ScopeVersion != 1)
        {
            return false; // Gemma Scope 2 ids are compiled in only; their hub folders are not listed at run time.
        }

        var match = IdPattern().Match(saeId);
        if (!match.Success || !SaeWidths.Names.Contains(match.Groups["width"].Value))
        {
            return false;
        }

        int? layer = match.Groups["layer"].Success ? int.Parse(match.Groups["layer"].Value, CultureInfo.InvariantCulture) : null;
        if (layer >= LayerCount)
        {
            return false;
        }

        int? l0 = match.Groups["l0"].Success ? int.Parse(match.Groups["l0"].Value, CultureInfo.InvariantCulture) : null;
        if ((l0 is null) != IsCanonical)
        {
            return false;
        }

        parts = new SaeIdParts(saeId, match.Groups["folder"].Value, layer, match.Groups["width"].Value, l0);
        return true;
    }

    [GeneratedRegex(@"^(?<folder>(?:layer_(?<layer>0|[1-9][0-9]{0,2})|embedding)/width_(?<width>[0-9a-z]+))/(?:average_l0_(?<l0>0|[1-9][0-9]{0,6})|canonical)$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();
}

/// <summary>The parts of an SAE id: <c>{Folder}/average_l0_{AverageL0}</c> or <c>{Folder}/canonical</c>.</summary>
internal readonly record struct SaeIdParts(string Id, string Folder, int? Layer, string Width, int? AverageL0);
