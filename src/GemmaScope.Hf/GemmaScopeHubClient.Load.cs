namespace GemmaScope.Hf;

public sealed partial class GemmaScopeHubClient
{
    /// <summary>
    /// Downloads (or finds in the cache) an SAE and loads it. The SAE's <see cref="SaeConfig"/> gets the hook name, layer, model
    /// and Neuronpedia id from the catalog. Embedding SAEs are scaled by √d_in as SAELens does (see <see cref="SaeLoadOptions.InputScale"/>)
    /// unless <paramref name="loadOptions"/> sets another scale.
    /// </summary>
    /// <param name="release">A release name such as <c>gemma-scope-2b-pt-res</c> or <c>gemma-scope-2b-pt-res-canonical</c>.</param>
    /// <param name="saeId">An SAE id such as <c>layer_20/width_16k/average_l0_71</c> or <c>layer_20/width_16k/canonical</c>.</param>
    /// <param name="loadOptions">Precision, validation and threading of the loaded SAE.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download (not the load itself).</param>
    /// <returns>The SAE; dispose it to release its memory map.</returns>
    /// <exception cref="ArgumentException">Unknown release or SAE; the message lists the closest names.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid SAE, or its sizes are not the catalog's.</exception>
    public async Task<JumpReLUSae> LoadAsync(
        string release,
        string saeId,
        SaeLoadOptions? loadOptions = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var sae = await ResolveAsync(release, saeId, cancellationToken).ConfigureAwait(false);
        return await LoadAsync(sae, loadOptions, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads (or finds in the cache) a catalog SAE and loads it; see <see cref="LoadAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>.</summary>
    /// <param name="sae">From <see cref="ResolveAsync"/> or <see cref="GemmaScopeCatalog.GetSae"/>.</param>
    /// <param name="loadOptions">Precision, validation and threading of the loaded SAE.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download (not the load itself).</param>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid SAE, or its sizes are not the catalog's.</exception>
    /// <exception cref="NotSupportedException">An affine transcoder (<see cref="GemmaScopeSae.IsAffine"/>), whose skip term this version does not load.</exception>
    public async Task<JumpReLUSae> LoadAsync(
        GemmaScopeSae sae, SaeLoadOptions? loadOptions = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sae);
        if (sae.IsAffine)
        {
            // Loading one as a JumpReLUSae would drop its x·W_skip term without a word.
            throw new NotSupportedException(
                $"{sae} is an affine transcoder (it adds x·W_skip, 'affine_skip_connection'), which this version cannot load; " +
                "use the same id without '_affine'.");
        }

        var path = await DownloadAsync(sae, progress, cancellationToken).ConfigureAwait(false);
        return LoadDownloaded(sae, path, loadOptions);
    }

    internal static JumpReLUSae LoadDownloaded(GemmaScopeSae sae, string path, SaeLoadOptions? loadOptions)
    {
        var catalog = new SaeConfig
        {
            InputSize = sae.InputSize,
            FeatureCount = sae.FeatureCount,
            HookName = sae.HookName,
            HookLayer = sae.Layer,
            ModelName = sae.Release.ModelName,
            NeuronpediaId = sae.NeuronpediaId,
        };

        // A caller's Config adds to the catalog's facts: its set fields win, the catalog fills the rest.
        var given = loadOptions?.Config;
        var options = (loadOptions ?? SaeLoadOptions.Default) with
        {
            Config = given is null ? catalog : catalog with
            {
                HookName = given.HookName ?? catalog.HookName,
                HookLayer = given.HookLayer ?? catalog.HookLayer,
                ModelName = given.ModelName ?? catalog.ModelName,
                NeuronpediaId = given.NeuronpediaId ?? catalog.NeuronpediaId,
            },
        };

        // SAELens folds √d_in into embedding SAEs so that they read Gemma's scaled embedding (trained on the unscaled one).
        // A caller who set InputScale explicitly (any value other than the default 1) keeps theirs.
        if (sae.Site == SaeSite.Embedding && options.InputScale == 1f)
        {
            options = options with { InputScale = MathF.Sqrt(sae.InputSize) };
        }

        // The snapshot path is what users see (errors name it); the mapped file is sized through its open handle, so the
        // symlink into blobs/ loads as it is.
        var file = path;
        var loaded = JumpReLUSae.Load(file, options);
        if (loaded.InputSize != sae.InputSize || loaded.FeatureCount != sae.FeatureCount)
        {
            var (dIn, dSae) = (loaded.InputSize, loaded.FeatureCount);
            loaded.Dispose();
            throw new Formats.SaeFormatException(
                path, "W_enc", $"[d_in, d_sae] is not that of {sae} in the Gemma Scope catalog",
                $"[{sae.InputSize}, {sae.FeatureCount}]", $"[{dIn}, {dSae}]");
        }

        return loaded;
    }
}
