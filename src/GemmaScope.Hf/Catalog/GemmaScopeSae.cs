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
        Hook = HookOf(Site, layer ?? 0, release.ScopeVersion);
        OutputHook = Site == SaeSite.Transcoder ? HookPoint.MlpOut(Hook.Layer) : null;
        FilePath = Folder + (release.ScopeVersion == 1 ? "/params.npz" : "/params.safetensors");
        ConfigPath = release.ScopeVersion == 1 ? null : Folder + "/config.json";
        IsAffine = release.ScopeVersion == 2 && Folder.Contains("_affine", StringComparison.Ordinal);
    }

    /// <summary>The release this SAE was looked up in (for a canonical alias, the <c>-canonical</c> release).</summary>
    public GemmaScopeRelease Release { get; }

    /// <summary>The SAE id within its release, as given: <c>layer_20/width_16k/average_l0_71</c> or <c>layer_20/width_16k/canonical</c>.</summary>
    public string Id { get; }

    /// <summary>
    /// The real folder in the hub repository, e.g. <c>layer_20/width_16k/average_l0_71</c> (canonical aliases resolved) or,
    /// in Gemma Scope 2, <c>resid_post/layer_12_width_16k_l0_medium</c>.
    /// </summary>
    public string Folder { get; }

    /// <summary>The weights to download: <c>{Folder}/params.npz</c> (Gemma Scope) or <c>{Folder}/params.safetensors</c> (Gemma Scope 2).</summary>
    public string FilePath { get; }

    /// <summary>Gemma Scope 2's <c>{Folder}/config.json</c> beside the weights; null for Gemma Scope, whose folders hold only params.npz.</summary>
    public string? ConfigPath { get; }

    /// <summary>True for Gemma Scope 2's <c>_affine</c> transcoders, which add x·W_skip (<c>affine_skip_connection</c>) to their output.</summary>
    public bool IsAffine { get; }

    /// <summary>True when this is a transcoder (reads the MLP's input, writes its output) rather than an SAE.</summary>
    public bool IsTranscoder => Site == SaeSite.Transcoder;

    /// <summary>The Hugging Face repository id, e.g. <c>google/gemma-scope-2b-pt-res</c>.</summary>
    public string RepoId => Release.RepoId;

    /// <summary>The layer the SAE reads, or null for an embedding SAE.</summary>
    public int? Layer { get; }

    /// <summary>The width name from the folder, e.g. <c>16k</c>.</summary>
    public string Width { get; }

    /// <summary>The number of features (dictionary size, d_sae): 16384 for <c>16k</c>.</summary>
    public int FeatureCount { get; }

    /// <summary>
    /// The SAE's mean number of active features per token: the N of the <c>average_l0_N</c> folder (Gemma Scope), or the
    /// <c>l0</c> SAELens lists for a Gemma Scope 2 SAE (its <c>l0_small|medium|big</c> target).
    /// </summary>
    public int AverageL0 { get; }

    /// <summary>
    /// The catalog's kind of release this SAE belongs to (residual, attention, MLP, transcoder or embedding), what
    /// <c>gemmascope list --site</c> filters on. It classifies; where the SAE reads and writes is <see cref="Hook"/> and
    /// <see cref="OutputHook"/>.
    /// </summary>
    public SaeSite Site { get; }

    /// <summary>
    /// The hook point the SAE reads, as SAELens names it: <see cref="HookKind.ResidPost"/>, <see cref="HookKind.MlpOut"/>,
    /// <see cref="HookKind.AttnZ"/> or <see cref="HookKind.Embed"/> for SAEs; for transcoders <see cref="HookKind.Ln2Normalized"/>
    /// (Gemma Scope) or <see cref="HookKind.MlpIn"/> (Gemma Scope 2).
    /// </summary>
    public HookPoint Hook { get; }

    /// <summary>The hook point a transcoder writes (<see cref="HookKind.MlpOut"/> of its layer); null for an SAE, which reconstructs its input.</summary>
    public HookPoint? OutputHook { get; }

    /// <summary>
    /// <see cref="Hook"/>'s TransformerLens name: <c>blocks.{l}.hook_resid_post</c>, <c>blocks.{l}.hook_mlp_out</c>,
    /// <c>blocks.{l}.attn.hook_z</c>, <c>hook_embed</c>, or for transcoders <c>blocks.{l}.ln2.hook_normalized</c> (Gemma Scope)
    /// and <c>blocks.{l}.hook_mlp_in</c> (Gemma Scope 2). The value <see cref="SaeConfig.HookName"/> gets when the SAE is loaded.
    /// </summary>
    public string HookName => Hook.Name;

    /// <summary><see cref="OutputHook"/>'s TransformerLens name (<c>blocks.{l}.hook_mlp_out</c>); null for an SAE.</summary>
    public string? OutputHookName => OutputHook?.Name;

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

    // The one place a catalog classification becomes a site: through Core's HookPoint, which alone knows the names.
    private static HookPoint HookOf(SaeSite site, int layer, int scopeVersion) => HookPoint.Create(layer, site switch
    {
        SaeSite.Embedding => HookKind.Embed,
        SaeSite.ResidualStream => HookKind.ResidPost,
        SaeSite.MlpOutput => HookKind.MlpOut,
        SaeSite.AttentionOutput => HookKind.AttnZ,
        SaeSite.Transcoder => scopeVersion == 1 ? HookKind.Ln2Normalized : HookKind.MlpIn,
        _ => throw new ArgumentOutOfRangeException(nameof(site)),
    });
}
