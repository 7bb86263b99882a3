namespace GemmaScope.Hf;

/// <summary>The options with the environment and defaults filled in, as <c>huggingface_hub</c> would resolve them.</summary>
internal sealed record HubSettings(
    Uri Endpoint, string? Token, string CacheDirectory, bool Offline, string Revision, int DownloadRetries, bool VerifySha256, TimeSpan MetadataTimeout,
    TimeSpan DownloadTimeout)
{
    public const string DefaultEndpoint = "https://huggingface.co";

    public static HubSettings Resolve(GemmaScopeHubOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var env = options.EnvironmentReader;
        string? Env(string name) => env(name) is { Length: > 0 } value ? value : null;

        var endpointText = (options.Endpoint ?? Env("HF_ENDPOINT") ?? DefaultEndpoint).TrimEnd('/');
        if (!Uri.TryCreate(endpointText, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"Hub endpoint '{endpointText}' (options.Endpoint or HF_ENDPOINT) is not an absolute http(s) URL.", nameof(options));
        }

        var home = Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(UserHome(env), ".cache"), "huggingface");
        var cache = options.CacheDirectory ?? Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub");

        var token = options.Token ?? Env("HF_TOKEN") ?? ReadTokenFile(Env("HF_TOKEN_PATH") ?? Path.Combine(home, "token"));

        var offline = options.Offline ?? IsTrue(Env("HF_HUB_OFFLINE"));
        if (string.IsNullOrWhiteSpace(options.Revision))
        {
            throw new ArgumentException("options.Revision must name a branch, tag or commit.", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(options.DownloadRetries, nameof(options.DownloadRetries));
        var metadataTimeout = options.MetadataTimeout ?? SecondsFromEnvironment("HF_HUB_ETAG_TIMEOUT", Env("HF_HUB_ETAG_TIMEOUT"));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(metadataTimeout, TimeSpan.Zero, nameof(options.MetadataTimeout));
        var downloadTimeout = options.DownloadTimeout ?? SecondsFromEnvironment("HF_HUB_DOWNLOAD_TIMEOUT", Env("HF_HUB_DOWNLOAD_TIMEOUT"));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(downloadTimeout, TimeSpan.Zero, nameof(options.DownloadTimeout));
        return new HubSettings(
            endpoint, token?.Trim(), Path.GetFullPath(cache), offline, options.Revision, options.DownloadRetries, options.VerifySha256, metadataTimeout,
            downloadTimeout);
    }

    // huggingface_hub reads HF_HUB_ETAG_TIMEOUT (metadata) and HF_HUB_DOWNLOAD_TIMEOUT as seconds (a float), both default 10.
    private static TimeSpan SecondsFromEnvironment(string name, string? value)
    {
        if (value is null)
        {
            return TimeSpan.FromSeconds(10);
        }

        if (!double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            || !double.IsFinite(seconds) || seconds <= 0 || seconds > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            throw new ArgumentException($"{name} is '{value}'; expected a positive number of seconds, e.g. 10.");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    // huggingface_hub's constants.ENV_VARS_TRUE_VALUES.
    private static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string UserHome(Func<string, string?> env) =>
        env("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static string? ReadTokenFile(string path)
    {
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } token ? token : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
