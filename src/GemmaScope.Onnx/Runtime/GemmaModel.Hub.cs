using GemmaScope.Hf;

namespace GemmaScope.Onnx;

public sealed partial class GemmaModel
{
    /// <summary>
    /// <see cref="FromPretrained"/> on a local checkpoint folder, or on a Hugging Face repository downloaded first through the
    /// hub client and its cache (<see cref="GemmaScopeHubClient.DownloadModelAsync"/>: config, tokenizer, safetensors index and
    /// shards; resumed, SHA-256 checked, offline with <c>HF_HUB_OFFLINE</c>):
    /// <code>using var model = await GemmaModel.FromPretrainedAsync("google/gemma-2-2b");</code>
    /// Gemma repositories are gated: accept the licence on <c>https://huggingface.co/google/gemma-2-2b</c>, then set
    /// <c>HF_TOKEN</c> (or pass a <paramref name="hub"/> client whose options carry the token).
    /// </summary>
    /// <param name="repoIdOrPath">
    /// An existing folder (used as it is, like transformers' <c>from_pretrained</c>, even when it also reads as a repository id),
    /// else a repository id such as <c>google/gemma-2-2b</c>.
    /// </param>
    /// <param name="options">Session and tokenization options of the model.</param>
    /// <param name="hub">The hub client (endpoint, token, cache, revision, offline); null for one configured by the <c>HF_*</c> environment variables.</param>
    /// <param name="progress">Receives the bytes of the whole checkpoint in the cache so far while downloading.</param>
    /// <param name="cancellationToken">Cancels the download (a partial file is kept and resumed by the next call), not the build.</param>
    /// <returns>The model; dispose it to release its sessions and memory maps.</returns>
    /// <exception cref="DirectoryNotFoundException"><paramref name="repoIdOrPath"/> is neither an existing folder nor a repository id.</exception>
    /// <exception cref="HuggingFaceHubException">The download failed (gated repository, not found, a shard missing, offline without the files, …).</exception>
    /// <exception cref="GemmaScope.Formats.CheckpointFormatException">
    /// The checkpoint is malformed (see <see cref="FromPretrained"/>); an unsupported <c>model_type</c> is refused from
    /// <c>config.json</c>, before the weights are downloaded.
    /// </exception>
    public static async Task<GemmaModel> FromPretrainedAsync(
        string repoIdOrPath,
        GemmaModelOptions? options = null,
        GemmaScopeHubClient? hub = null,
        IProgress<ModelDownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(repoIdOrPath);
        if (Directory.Exists(repoIdOrPath))
        {
            return FromPretrained(repoIdOrPath, options);
        }

        if (!LooksLikeRepoId(repoIdOrPath))
        {
            throw new DirectoryNotFoundException(
                $"'{repoIdOrPath}' is not an existing folder, nor a Hugging Face repository id like 'google/gemma-2-2b'.");
        }

        var owned = hub is null ? new GemmaScopeHubClient() : null;
        var client = hub ?? owned!;
        string folder;
        try
        {
            if (!client.IsOffline)
            {
                // config.json first: a model this library cannot build is refused before gigabytes of weights come down.
                var config = await client.DownloadFileAsync(repoIdOrPath, "config.json", progress: null, cancellationToken).ConfigureAwait(false);
                GemmaScope.Models.GemmaArchitecture.FromConfig(config);
            }

            folder = await client.DownloadModelAsync(repoIdOrPath, revision: null, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            owned?.Dispose();
        }

        return FromPretrained(folder, options);
    }

    // 'owner/name': one '/', no path syntax (a relative or absolute path that does not exist is reported as a missing folder).
    private static bool LooksLikeRepoId(string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 && slash < value.Length - 1 && value.IndexOf('/', slash + 1) < 0
            && value[0] is not ('.' or '~') && !value.Contains('\\', StringComparison.Ordinal) && !value.Contains(':', StringComparison.Ordinal)
            && !value.Contains("--", StringComparison.Ordinal);
    }
}
