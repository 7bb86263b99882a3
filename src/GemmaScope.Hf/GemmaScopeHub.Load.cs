namespace GemmaScope.Hf;

public static partial class GemmaScopeHub
{
    /// <summary>
    /// Downloads (or finds in the cache) an SAE by its Gemma Scope / SAELens name and loads it with default load options:
    /// <code>using var sae = await GemmaScopeHub.LoadAsync("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical");</code>
    /// See <see cref="GemmaScopeHubClient.LoadAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>.
    /// </summary>
    /// <param name="release">A release name such as <c>gemma-scope-2b-pt-res</c> or <c>gemma-scope-2b-pt-res-canonical</c>.</param>
    /// <param name="saeId">An SAE id such as <c>layer_20/width_16k/average_l0_71</c> or <c>layer_20/width_16k/canonical</c>.</param>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download; a partial download is kept and resumed by the next call.</param>
    /// <returns>The SAE; dispose it to release its memory map.</returns>
    /// <exception cref="ArgumentException">Unknown release or SAE; the message lists the closest names.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid SAE, or its sizes are not the catalog's.</exception>
    public static Task<JumpReLUSae> LoadAsync(
        string release,
        string saeId,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        LoadAsync(release, saeId, SaeLoadOptions.Default, options, progress, cancellationToken);

    /// <summary>As <see cref="LoadAsync(string, string, GemmaScopeHubOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>, with load options.</summary>
    /// <param name="release">A release name such as <c>gemma-scope-2b-pt-res</c>.</param>
    /// <param name="saeId">An SAE id such as <c>layer_20/width_16k/average_l0_71</c>.</param>
    /// <param name="loadOptions">Precision, validation and threading of the loaded SAE.</param>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download; a partial download is kept and resumed by the next call.</param>
    /// <returns>The SAE; dispose it to release its memory map.</returns>
    /// <exception cref="ArgumentException">Unknown release or SAE; the message lists the closest names.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid SAE, or its sizes are not the catalog's.</exception>
    public static async Task<JumpReLUSae> LoadAsync(
        string release,
        string saeId,
        SaeLoadOptions loadOptions,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loadOptions);
        using var client = new GemmaScopeHubClient(SharedHttp.Value, options);
        return await client.LoadAsync(release, saeId, loadOptions, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Downloads (or finds in the cache) a transcoder by its SAELens name and loads it:
    /// <code>using var tc = await GemmaScopeHub.LoadTranscoderAsync("gemma-scope-2b-pt-transcoders", "layer_3/width_16k/average_l0_54");</code>
    /// See <see cref="GemmaScopeHubClient.LoadTranscoderAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>.
    /// </summary>
    /// <param name="release">e.g. <c>gemma-scope-2b-pt-transcoders</c> or <c>gemma-scope-2-270m-pt-transcoders</c>.</param>
    /// <param name="saeId">The transcoder's id in that release.</param>
    /// <param name="loadOptions">Precision, validation and threading; null for defaults.</param>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    /// <returns>The transcoder; dispose it to release its memory map.</returns>
    /// <exception cref="ArgumentException">Unknown release or id, or an SAE rather than a transcoder.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    /// <exception cref="Formats.SaeFormatException">The file is not a valid transcoder, or its sizes or sites are not the catalog's.</exception>
    public static async Task<JumpReLUTranscoder> LoadTranscoderAsync(
        string release,
        string saeId,
        SaeLoadOptions? loadOptions = null,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        using var client = new GemmaScopeHubClient(SharedHttp.Value, options);
        return await client.LoadTranscoderAsync(release, saeId, loadOptions, progress, cancellationToken).ConfigureAwait(false);
    }
}
