namespace GemmaScope.Hf;

/// <summary>
/// Settings of the hub client. Every property left null falls back to the environment variable that
/// Python's <c>huggingface_hub</c> reads, then to its default; a value set here wins over the environment.
/// </summary>
/// <remarks>Immutable record; change it with <c>with</c>. Thread-safe.</remarks>
public sealed record GemmaScopeHubOptions
{
    /// <summary>The hub address; else <c>HF_ENDPOINT</c>; else <c>https://huggingface.co</c>.</summary>
    public string? Endpoint { get; init; }

    /// <summary>
    /// The access token sent as <c>Authorization: Bearer</c> to the hub (never to a redirect on another host);
    /// else <c>HF_TOKEN</c>; else the file <c>HF_TOKEN_PATH</c> or <c>{HF_HOME}/token</c> written by <c>huggingface-cli login</c>.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>
    /// The hub cache folder (holding <c>models--google--…</c>); else <c>HF_HUB_CACHE</c>; else <c>HUGGINGFACE_HUB_CACHE</c>;
    /// else <c>{HF_HOME}/hub</c>; else <c>{XDG_CACHE_HOME}/huggingface/hub</c>; else <c>~/.cache/huggingface/hub</c>.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>True: never touch the network, use the cache only. Else <c>HF_HUB_OFFLINE</c> (1/true/yes/on); else false.</summary>
    public bool? Offline { get; init; }

    /// <summary>The branch, tag or 40-hex commit to download from. Default <c>main</c>. A file cached for a commit is used without any request.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>
    /// How many times one download resumes (with an HTTP <c>Range</c> request) after the connection breaks before giving up. Default 3.
    /// A partial file stays as <c>blobs/&lt;etag&gt;.incomplete</c>, so a later call resumes too.
    /// </summary>
    public int DownloadRetries { get; init; } = 3;

    /// <summary>Check the downloaded bytes' SHA-256 against the hub's LFS ETag (when the ETag is one). Default true.</summary>
    public bool VerifySha256 { get; init; } = true;

    /// <summary>
    /// Timeout of the hub's metadata requests (HEAD, file listings). Null: <c>HF_HUB_ETAG_TIMEOUT</c> (seconds, as
    /// huggingface_hub reads it), else 10 s.
    /// </summary>
    public TimeSpan? MetadataTimeout { get; init; }

    /// <summary>
    /// How long a download may go without receiving a byte (waiting for the answer's headers, then each read of the body) before
    /// the connection is dropped and the download resumes with a <c>Range</c> request (counted in <see cref="DownloadRetries"/>).
    /// A download as a whole is never timed: gigabytes may take hours. Else <c>HF_HUB_DOWNLOAD_TIMEOUT</c> (seconds, as
    /// <c>huggingface_hub</c> reads it); else 10 s.
    /// </summary>
    public TimeSpan? DownloadTimeout { get; init; }

    /// <summary>Reads environment variables; replaced in tests so that they need not change the process environment.</summary>
    internal Func<string, string?> EnvironmentReader { get; init; } = Environment.GetEnvironmentVariable;
}
