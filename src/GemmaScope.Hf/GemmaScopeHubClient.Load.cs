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
    /// <exception cref="ArgumentException">A transcoder (<see cref="GemmaScopeSae.IsTranscoder"/>): load it with <see cref="LoadTranscoderAsync(GemmaScopeSae, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>.</exception>
    public async Task<JumpReLUSae> LoadAsync(
        GemmaScopeSae sae, SaeLoadOptions? loadOptions = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sae);
        if (sae.IsTranscoder)
        {
            // As an SAE it would reconstruct the site it reads, not the MLP output it predicts (and drop x·W_skip).
            throw new ArgumentException($"{sae} is a transcoder ({sae.HookName} → {sae.OutputHookName}); load it with LoadTranscoderAsync.", nameof(sae));
        }

        var path = await DownloadWithConfigAsync(sae, progress, cancellationToken).ConfigureAwait(false);
        return LoadDownloaded(sae, path, loadOptions);
    }

    /// <summary>
    /// Downloads (or finds in the cache) a transcoder and loads it: Gemma Scope's <c>gemma-scope-2b-pt-transcoders</c>
    /// (params.npz; reads <c>blocks.{l}.ln2.hook_normalized</c>) or Gemma Scope 2's transcoders (params.safetensors with its
    /// config.json; read <c>blocks.{l}.hook_mlp_in</c>, <c>_affine</c> ones add x·W_skip). Both write <c>blocks.{l}.hook_mlp_out</c>.
    /// </summary>
    /// <param name="release">e.g. <c>gemma-scope-2b-pt-transcoders</c> or <c>gemma-scope-2-1b-it-transcoders</c>.</param>
    /// <param name="saeId">e.g. <c>layer_3/width_16k/average_l0_54</c> or <c>transcoder/layer_7_width_16k_l0_big_affine</c>.</param>
    /// <param name="loadOptions">Precision, validation and threading.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download (not the load itself).</param>
    /// <returns>The transcoder; dispose it to release its memory map.</returns>
    /// <exception cref="ArgumentException">Unknown release or id, or one that is an SAE, not a transcoder.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid transcoder, or its sizes or sites are not the catalog's.</exception>
    public async Task<JumpReLUTranscoder> LoadTranscoderAsync(
        string release, string saeId, SaeLoadOptions? loadOptions = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var sae = await ResolveAsync(release, saeId, cancellationToken).ConfigureAwait(false);
        return await LoadTranscoderAsync(sae, loadOptions, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads (or finds in the cache) a catalog transcoder and loads it; see <see cref="LoadTranscoderAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>.</summary>
    /// <param name="sae">A transcoder entry (<see cref="GemmaScopeSae.IsTranscoder"/>).</param>
    /// <param name="loadOptions">Precision, validation and threading.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download (not the load itself).</param>
    /// <returns>The transcoder; dispose it to release its memory map.</returns>
    /// <exception cref="ArgumentException">The entry is an SAE, not a transcoder.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid transcoder, or its sizes or sites are not the catalog's.</exception>
    public async Task<JumpReLUTranscoder> LoadTranscoderAsync(
        GemmaScopeSae sae, SaeLoadOptions? loadOptions = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sae);
        if (!sae.IsTranscoder)
        {
            throw new ArgumentException($"{sae} is an SAE ({sae.HookName}), not a transcoder; load it with LoadAsync.", nameof(sae));
        }

        var path = await DownloadWithConfigAsync(sae, progress, cancellationToken).ConfigureAwait(false);
        return LoadDownloadedTranscoder(sae, path, loadOptions);
    }

    // Gemma Scope 2's config.json says what the weights are (sites, SAE or transcoder); it must sit beside them in the snapshot.
    private async Task<string> DownloadWithConfigAsync(GemmaScopeSae sae, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        if (sae.ConfigPath is not null)
        {
            var cfg = await DownloadFileAsync(sae.RepoId, sae.ConfigPath, null, cancellationToken).ConfigureAwait(false);
            var path = await DownloadAsync(sae, progress, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(Path.GetDirectoryName(cfg), Path.GetDirectoryName(path), StringComparison.Ordinal))
            {
                throw new HuggingFaceHubException($"{sae}: config.json ({cfg}) and params.safetensors ({path}) landed in different snapshot folders.");
            }

            return path;
        }

        return await DownloadAsync(sae, progress, cancellationToken).ConfigureAwait(false);
    }

    private static SaeConfig CatalogConfig(GemmaScopeSae sae, SaeConfig? given)
    {
        var catalog = new SaeConfig
        {
            InputSize = sae.InputSize,
            FeatureCount = sae.FeatureCount,
            Site = sae.Hook,
            OutputSite = sae.OutputHook,
            HookLayer = sae.Layer,
            ModelName = sae.Release.ModelName,
            NeuronpediaId = sae.NeuronpediaId,
        };

        // A caller's Config adds to the catalog's facts: its set fields win, the catalog fills the rest.
        return given is null ? catalog : catalog with
        {
            HookName = given.HookName ?? catalog.HookName,
            OutputHookName = given.OutputHookName ?? catalog.OutputHookName,
            HookLayer = given.HookLayer ?? catalog.HookLayer,
            ModelName = given.ModelName ?? catalog.ModelName,
            NeuronpediaId = given.NeuronpediaId ?? catalog.NeuronpediaId,
        };
    }

    // A Gemma Scope 2 config.json names the sites itself; they must be the catalog's (SAELens's registry's).
    private static void CheckSites(GemmaScopeSae sae, string path, SaeConfig loaded, SaeConfig? given)
    {
        if (given?.HookName is null && !string.Equals(loaded.HookName, sae.HookName, StringComparison.Ordinal))
        {
            throw new Formats.SaeFormatException(path, "config.json hf_hook_point_in", $"the site is not that of {sae} in the catalog", sae.HookName, loaded.HookName);
        }

        if (given?.OutputHookName is null && !string.Equals(loaded.OutputHookName, sae.OutputHookName, StringComparison.Ordinal))
        {
            throw new Formats.SaeFormatException(path, "config.json hf_hook_point_out", $"the output site is not that of {sae} in the catalog", sae.OutputHookName ?? "none (an SAE)", loaded.OutputHookName ?? "none");
        }
    }

    internal static JumpReLUTranscoder LoadDownloadedTranscoder(GemmaScopeSae sae, string path, SaeLoadOptions? loadOptions)
    {
        var given = loadOptions?.Config;
        var options = (loadOptions ?? SaeLoadOptions.Default) with { Config = CatalogConfig(sae, given) };
        var loaded = JumpReLUTranscoder.Load(path, options);
        try
        {
            if (loaded.InputSize != sae.InputSize || loaded.FeatureCount != sae.FeatureCount || loaded.OutputSize != sae.Release.ModelDim)
            {
                throw new Formats.SaeFormatException(
                    path, "W_enc", $"[d_in, d_sae] → d_out is not that of {sae} in the Gemma Scope catalog",
                    $"[{sae.InputSize}, {sae.FeatureCount}] → {sae.Release.ModelDim}", $"[{loaded.InputSize}, {loaded.FeatureCount}] → {loaded.OutputSize}");
            }

            if (loaded.HasSkipConnection != sae.IsAffine)
            {
                throw new Formats.SaeFormatException(path, "affine_skip_connection", $"{sae} is {(sae.IsAffine ? "" : "not ")}affine in the catalog",
                    sae.IsAffine ? "present" : "absent", loaded.HasSkipConnection ? "present" : "absent");
            }

            CheckSites(sae, path, loaded.Config, given);
            return loaded;
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    internal static JumpReLUSae LoadDownloaded(GemmaScopeSae sae, string path, SaeLoadOptions? loadOptions)
    {
        var given = loadOptions?.Config;
        var options = (loadOptions ?? SaeLoadOptions.Default) with { Config = CatalogConfig(sae, given) };

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

        try
        {
            CheckSites(sae, path, loaded.Config, given);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }

        return loaded;
    }
}
