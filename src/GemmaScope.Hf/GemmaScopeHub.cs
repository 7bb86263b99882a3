namespace GemmaScope.Hf;

/// <summary>
/// One-line access to released Gemma Scope SAEs by their Gemma Scope / SAELens names:
/// <code>using var sae = await GemmaScopeHub.LoadAsync("gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71");</code>
/// For many calls, or DI, use a <see cref="GemmaScopeHubClient"/> (see <see cref="GemmaScopeServiceCollectionExtensions.AddGemmaScope"/>).
/// </summary>
/// <remarks>Thread-safe. Environment variables (<c>HF_TOKEN</c>, <c>HF_ENDPOINT</c>, <c>HF_HOME</c>, <c>HF_HUB_CACHE</c>, <c>HF_HUB_OFFLINE</c>, <c>HF_HUB_DOWNLOAD_TIMEOUT</c>) are read on each call.</remarks>
public static class GemmaScopeHub
{
    // One connection pool for all static calls; it never follows redirects itself (see GemmaScopeHubClient).
    private static readonly Lazy<HttpClient> SharedHttp = new(() => HttpClientLease.Create(followRedirects: false));

    /// <summary>Downloads (or finds in the cache) the <c>params.npz</c> of an SAE and returns its local path.</summary>
    /// <param name="release">A release name such as <c>gemma-scope-2b-pt-res</c> or <c>gemma-scope-2b-pt-res-canonical</c>.</param>
    /// <param name="saeId">An SAE id such as <c>layer_20/width_16k/average_l0_71</c> or <c>layer_20/width_16k/canonical</c>.</param>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels; a partial download is kept and resumed by the next call.</param>
    /// <exception cref="ArgumentException">Unknown release or SAE; the message lists the closest names.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    public static Task<string> DownloadAsync(
        string release,
        string saeId,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        return WithClientAsync(options, c => c.DownloadAsync(release, saeId, progress, cancellationToken));
    }

    /// <summary>
    /// Downloads (or finds in the cache) a Hugging Face model checkpoint and returns its snapshot folder; see
    /// <see cref="GemmaScopeHubClient.DownloadModelAsync"/>. Gemma repositories are gated: accept the licence on
    /// <c>https://huggingface.co/{repoId}</c> and set <c>HF_TOKEN</c>.
    /// </summary>
    /// <param name="repoId">e.g. <c>google/gemma-2-2b</c>.</param>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables (the revision is <see cref="GemmaScopeHubOptions.Revision"/>).</param>
    /// <param name="progress">Receives the bytes of the whole checkpoint in the cache so far.</param>
    /// <param name="cancellationToken">Cancels; a partial file is kept and resumed by the next call.</param>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, a file did not verify, or offline mode lacks files.</exception>
    public static Task<string> DownloadModelAsync(
        string repoId,
        GemmaScopeHubOptions? options = null,
        IProgress<ModelDownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        return WithClientAsync(options, c => c.DownloadModelAsync(repoId, revision: null, progress, cancellationToken));
    }

    /// <summary>
    /// Downloads (or finds in the cache) an SAE by its Gemma Scope / SAELens name and loads it with default load options:
    /// <code>using var sae = await GemmaScopeHub.LoadAsync("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical");</code>
    /// A one-call <see cref="GemmaScopeHubClient.LoadAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>
    /// (its parameters, result and exceptions); <paramref name="options"/> overrides the <c>HF_*</c> environment variables.
    /// </summary>
    /// <inheritdoc cref="GemmaScopeHubClient.LoadAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>
    public static Task<JumpReLUSae> LoadAsync(
        string release,
        string saeId,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        LoadAsync(release, saeId, SaeLoadOptions.Default, options, progress, cancellationToken);

    /// <summary>
    /// As <see cref="LoadAsync(string, string, GemmaScopeHubOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>, with load
    /// options; <paramref name="options"/> overrides the <c>HF_*</c> environment variables.
    /// </summary>
    /// <inheritdoc cref="GemmaScopeHubClient.LoadAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>
    public static async Task<JumpReLUSae> LoadAsync(
        string release,
        string saeId,
        SaeLoadOptions loadOptions,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loadOptions); // in the task, as before
        return await WithClientAsync(options, c => c.LoadAsync(release, saeId, loadOptions, progress, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>
    /// Downloads (or finds in the cache) a transcoder by its SAELens name and loads it:
    /// <code>using var tc = await GemmaScopeHub.LoadTranscoderAsync("gemma-scope-2b-pt-transcoders", "layer_3/width_16k/average_l0_54");</code>
    /// A one-call <see cref="GemmaScopeHubClient.LoadTranscoderAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>;
    /// <paramref name="options"/> overrides the <c>HF_*</c> environment variables.
    /// </summary>
    /// <inheritdoc cref="GemmaScopeHubClient.LoadTranscoderAsync(string, string, SaeLoadOptions?, IProgress{DownloadProgress}?, CancellationToken)"/>
    public static Task<JumpReLUTranscoder> LoadTranscoderAsync(
        string release,
        string saeId,
        SaeLoadOptions? loadOptions = null,
        GemmaScopeHubOptions? options = null,
        IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        WithClientAsync(options, c => c.LoadTranscoderAsync(release, saeId, loadOptions, progress, cancellationToken));

    // Each static call gets a client on the shared connection pool, disposed when the call completes.
    private static async Task<T> WithClientAsync<T>(GemmaScopeHubOptions? options, Func<GemmaScopeHubClient, Task<T>> call)
    {
        using var client = new GemmaScopeHubClient(SharedHttp.Value, options);
        return await call(client).ConfigureAwait(false);
    }
}
