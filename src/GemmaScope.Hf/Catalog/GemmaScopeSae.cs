using System.Globalization;

namespace GemmaScope.Hf;

/// <summary>
/// One released Gemma Scope SAE: where it lives on the hub, what it reads and how wide it is.
/// Obtain it from <see cref="GemmaScopeCatalog.GetSae"/>, <see cref="GemmaScopeRelease.GetSae"/> or
/// <see cref="GemmaScopeHubClient.ResolveAsync"/>.
/// </summary>
/// <remarks>Immutable; thread-safe.</remarks>
public sealed class GemmaScopeSae
{
    internal GemmaScopeSae(
        GemmaScopeRelease release, string id, string folder, int? layer, string width, int averageL0, string? neuronpediaId, bool isCompiledIn)
    {
        Release = release;
        Id = id;
        Folder = folder;
        Layer = layer;
        Width = width;
        FeatureCount = SaeWidths.FeatureCount(width);
        AverageL0 = averageL0;
        NeuronpediaId = neuronpediaId;
        IsCompiledIn = isCompiledIn;
        Site = layer is null ? SaeSite.Embedding : release.Site;
        InputSize = layer is null ? release.ModelDim : release.InputSize;
        HookName = HookNameOf(Site, layer);
    }

    /// <summary>The release this SAE was looked up in (for a canonical alias, the <c>-canonical</c> release).</summary>
    public GemmaScopeRelease Release { get; }

    /// <summary>The SAE id within its release, as given: <c>layer_20/width_16k/average_l0_71</c> or <c>layer_20/width_16k/canonical</c>.</summary>
    public string Id { get; }

    /// <summary>The real folder in the hub repository, e.g. <c>layer_20/width_16k/average_l0_71</c> (canonical aliases resolved).</summary>
    public string Folder { get; }

    /// <summary>The file to download: <c>{Folder}/params.npz</c>.</summary>
    public string FilePath => Folder + "/params.npz";

    /// <summary>The Hugging Face repository id, e.g. <c>google/gemma-scope-2b-pt-res</c>.</summary>
    public string RepoId => Release.RepoId;

    /// <summary>The Gemma 2 layer the SAE reads, or null for an embedding SAE.</summary>
    public int? Layer { get; }

    /// <summary>The width name from the folder, e.g. <c>16k</c>.</summary>
    public string Width { get; }

    /// <summary>The number of features (dictionary size, d_sae): 16384 for <c>16k</c>.</summary>
    public int FeatureCount { get; }

    /// <summary>The N of the <c>average_l0_N</c> folder: the SAE's mean number of active features per token.</summary>
    public int AverageL0 { get; }

    /// <summary>Where the SAE reads its input.</summary>
    public SaeSite Site { get; }

    /// <summary>
    /// The TransformerLens hook name, as SAELens writes it: <c>blocks.{l}.hook_resid_post</c>, <c>blocks.{l}.hook_mlp_out</c>,
    /// <c>blocks.{l}.attn.hook_z</c> or <c>hook_embed</c>.
    /// </summary>
    public string HookName { get; }

    /// <summary>The SAE input width d_in: d_model, or heads × head_dim for attention SAEs.</summary>
    public int InputSize { get; }

    /// <summary>
    /// The Neuronpedia SAE id (e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>), or null when Neuronpedia has no dashboards for this SAE.
    /// The plain id belongs to the canonical SAE of a folder; a few other SAEs have <c>…__l0-N</c> ids.
    /// </summary>
    public string? NeuronpediaId { get; }

    /// <summary>True when this SAE is in the compiled-in catalog; false when it was found through the hub's file listing.</summary>
    public bool IsCompiledIn { get; }

    /// <summary>True when <see cref="Id"/> is a <c>…/canonical</c> alias.</summary>
    public bool IsCanonicalAlias => Release.IsCanonical;

    /// <summary>The Neuronpedia page of one feature, or null when <see cref="NeuronpediaId"/> is null.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="feature"/> is not in [0, <see cref="FeatureCount"/>).</exception>
    public Uri? NeuronpediaFeatureUrl(int feature)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(feature);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(feature, FeatureCount);
        return NeuronpediaId is null ? null : GemmaScopeCatalog.NeuronpediaFeatureUrl(NeuronpediaId, feature);
    }

    /// <summary><c>{release}/{id}</c>.</summary>
    public override string ToString() => $"{Release.Name}/{Id}";

    private static string HookNameOf(SaeSite site, int? layer) => site switch
    {
        SaeSite.Embedding => "hook_embed",
        SaeSite.ResidualStream => string.Create(CultureInfo.InvariantCulture, $"blocks.{layer}.hook_resid_post"),
        SaeSite.MlpOutput => string.Create(CultureInfo.InvariantCulture, $"blocks.{layer}.hook_mlp_out"),
        SaeSite.AttentionOutput => string.Create(CultureInfo.InvariantCulture, $"blocks.{layer}.attn.hook_z"),
        _ => throw new ArgumentOutOfRangeException(nameof(site)),
    };
}
