using System.Globalization;
using System.Net;
using System.Text.Json;

namespace GemmaScope.Hf;

/// <summary>
/// Feature descriptions from Neuronpedia: single features from its API, whole SAEs from its public bulk exports, cached on disk
/// next to the Hugging Face hub cache and readable offline (from the cache, or from an export folder the user downloaded).
/// </summary>
/// <remarks>
/// <para>Neuronpedia SAE ids look like <c>gemma-2-2b/20-gemmascope-res-16k</c>: see <see cref="GemmaScopeSae.NeuronpediaId"/> and
/// <see cref="SaeConfig.NeuronpediaId"/>.</para>
/// <para>Thread-safe. Cache files are written to a temporary name and renamed, so an interrupted download never looks complete;
/// an export counts as cached only once all its batches were fetched and parsed.</para>
/// </remarks>
public sealed class NeuronpediaClient : IDisposable
{
    private const string CompleteMarker = ".complete";
    private readonly HttpClientLease _http;

    /// <summary>A client with its own <see cref="HttpClient"/> (disposed with the client).</summary>
    /// <param name="options">Overrides of the environment variables; null for the environment alone.</param>
    /// <exception cref="ArgumentException">An endpoint is not an absolute http(s) URL.</exception>
    public NeuronpediaClient(NeuronpediaOptions? options = null)
        : this(HttpClientLease.Own(followRedirects: true), options)
    {
    }

    /// <summary>A client on a caller's <see cref="HttpClient"/>, which it does not dispose.</summary>
    /// <param name="httpClient">Used for every request; each request is timed by <see cref="NeuronpediaOptions.Timeout"/>.</param>
    /// <param name="options">Overrides of the environment variables; null for the environment alone.</param>
    /// <exception cref="ArgumentException">An endpoint is not an absolute http(s) URL.</exception>
    public NeuronpediaClient(HttpClient httpClient, NeuronpediaOptions? options = null)
        : this(HttpClientLease.Borrow(httpClient, nameof(httpClient)), options)
    {
    }

    private NeuronpediaClient(HttpClientLease http, NeuronpediaOptions? options)
    {
        _http = http;
        Options = options ?? new NeuronpediaOptions();
        string? Env(string name) => Options.EnvironmentReader(name) is { Length: > 0 } v ? v : null;
        ApiEndpoint = ParseEndpoint(Options.ApiEndpoint ?? Env("NEURONPEDIA_ENDPOINT") ?? NeuronpediaOptions.DefaultApiEndpoint, "ApiEndpoint or NEURONPEDIA_ENDPOINT");
        ExportsEndpoint = ParseEndpoint(
            Options.ExportsEndpoint ?? Env("NEURONPEDIA_EXPORTS_ENDPOINT") ?? NeuronpediaOptions.DefaultExportsEndpoint, "ExportsEndpoint or NEURONPEDIA_EXPORTS_ENDPOINT");
        var hubCache = HubSettings.Resolve(new GemmaScopeHubOptions { EnvironmentReader = Options.EnvironmentReader, Offline = false }).CacheDirectory;
        CacheDirectory = Path.GetFullPath(Options.CacheDirectory ?? Env("NEURONPEDIA_CACHE") ?? Path.Combine(Path.GetDirectoryName(hubCache) ?? hubCache, "neuronpedia"));
        ExportDirectory = (Options.ExportDirectory ?? Env("NEURONPEDIA_EXPORTS")) is { } dir ? Path.GetFullPath(dir) : null;
        IsOffline = Options.Offline ?? (IsTrue(Env("NEURONPEDIA_OFFLINE")) || IsTrue(Env("HF_HUB_OFFLINE")));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(Options.Timeout, TimeSpan.Zero, nameof(options));
    }

    /// <summary>The options this client was made with (environment variables were read once, at construction).</summary>
    public NeuronpediaOptions Options { get; }

    /// <summary>The API address in use.</summary>
    public Uri ApiEndpoint { get; }

    /// <summary>The bulk export address in use.</summary>
    public Uri ExportsEndpoint { get; }

    /// <summary>The cache folder in use.</summary>
    public string CacheDirectory { get; }

    /// <summary>The user's export folder, or null.</summary>
    public string? ExportDirectory { get; }

    /// <summary>True when the client never touches the network.</summary>
    public bool IsOffline { get; }

    /// <summary>
    /// The explanations of one feature: from a local export of its SAE when there is one (user folder or cache), else from the
    /// cached API answer, else from <c>GET {api}/api/feature/{modelId}/{sourceId}/{index}</c> (then cached).
    /// </summary>
    /// <param name="neuronpediaId">e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>.</param>
    /// <param name="index">The feature index.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The explanations, possibly none (Neuronpedia has the feature but no explanation of it).</returns>
    /// <exception cref="NeuronpediaException">Neuronpedia does not know the feature (404), failed, answered malformed JSON, or offline mode has nothing cached.</exception>
    public async Task<IReadOnlyList<FeatureExplanation>> GetFeatureAsync(string neuronpediaId, int index, CancellationToken cancellationToken = default)
    {
        var (modelId, sourceId) = SplitId(neuronpediaId);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (TryReadLocalExport(neuronpediaId) is { } export)
        {
            return export.Explanations.Where(e => e.Index == index).ToList().AsReadOnly();
        }

        var cachePath = Path.Combine(CacheDirectory, "api", "feature", modelId, sourceId, index.ToString(CultureInfo.InvariantCulture) + ".json");
        string json;
        string where;
        if (File.Exists(cachePath))
        {
            json = await File.ReadAllTextAsync(cachePath, cancellationToken).ConfigureAwait(false);
            where = cachePath;
        }
        else
        {
            var url = new Uri(ApiEndpoint, string.Create(CultureInfo.InvariantCulture, $"api/feature/{modelId}/{sourceId}/{index}"));
            if (IsOffline)
            {
                throw new NeuronpediaException(
                    $"Offline mode (NEURONPEDIA_OFFLINE, HF_HUB_OFFLINE or options.Offline): feature {neuronpediaId}/{index} is not cached ({cachePath} is missing) " +
                    $"and no export of {neuronpediaId} is in the cache or the export folder.");
            }

            json = await GetStringAsync(url, cancellationToken).ConfigureAwait(false);
            where = url.ToString();
            var parsed = ParseFeature(json, modelId, sourceId, index, where); // validate before caching
            HubCacheLayout.WriteAllTextAtomic(cachePath, json);
            return parsed;
        }

        return ParseFeature(json, modelId, sourceId, index, where);
    }

    /// <summary>
    /// The whole export of one SAE: from the user's export folder, else the cache, else downloaded from
    /// <c>{exports}/v1/{modelId}/{sourceId}/explanations/batch-0.jsonl.gz</c>, <c>batch-1…</c> until one is missing (then cached).
    /// </summary>
    /// <param name="neuronpediaId">e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>.</param>
    /// <param name="progress">Receives byte counts per batch file while downloading.</param>
    /// <param name="cancellationToken">Cancels the download; nothing incomplete is left looking complete.</param>
    /// <exception cref="NeuronpediaException">No export (batch-0 missing), a failed request, a malformed record, or offline mode with nothing local.</exception>
    public async Task<NeuronpediaExport> GetExportAsync(
        string neuronpediaId, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (modelId, sourceId) = SplitId(neuronpediaId);
        if (TryReadLocalExport(neuronpediaId) is { } local)
        {
            return local;
        }

        var folder = CacheExportFolder(modelId, sourceId);
        if (IsOffline)
        {
            throw new NeuronpediaException(
                $"Offline mode (NEURONPEDIA_OFFLINE, HF_HUB_OFFLINE or options.Offline): no export of {neuronpediaId} in the cache ({folder})" +
                (ExportDirectory is null ? " and no export folder is set (NEURONPEDIA_EXPORTS)." : $" or in the export folder {ExportDirectory}."));
        }

        Directory.CreateDirectory(folder);
        File.Delete(Path.Combine(folder, CompleteMarker));
        foreach (var stale in Directory.EnumerateFiles(folder, "batch-*"))
        {
            File.Delete(stale);
        }

        var batches = 0;
        while (true)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"batch-{batches}.jsonl.gz");
            var url = new Uri(ExportsEndpoint, $"v1/{modelId}/{sourceId}/explanations/{name}");
            if (!await DownloadIfPresentAsync(url, Path.Combine(folder, name), progress, cancellationToken).ConfigureAwait(false))
            {
                break;
            }

            batches++;
        }

        if (batches == 0)
        {
            throw new NeuronpediaException($"Neuronpedia has no explanations export of {neuronpediaId} ({ExportsEndpoint}v1/{modelId}/{sourceId}/explanations/batch-0.jsonl.gz is missing).", HttpStatusCode.NotFound);
        }

        var export = NeuronpediaExport.Read(folder, neuronpediaId); // throws on malformed records: then no marker is written
        HubCacheLayout.WriteAllTextAtomic(Path.Combine(folder, CompleteMarker), batches.ToString(CultureInfo.InvariantCulture));
        return export;
    }

    /// <summary>
    /// Descriptions of some features of one SAE, as the HTML views take them: from a local export when there is one, else one API
    /// request per feature not cached yet. Features Neuronpedia has no explanation of are left out.
    /// </summary>
    /// <param name="neuronpediaId">e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>.</param>
    /// <param name="features">The feature indices wanted (duplicates are fine).</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <exception cref="NeuronpediaException">A request failed other than with 404, an answer was malformed, or offline mode lacks a feature.</exception>
    public async Task<IReadOnlyDictionary<int, string>> GetDescriptionsAsync(
        string neuronpediaId, IEnumerable<int> features, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(features);
        SplitId(neuronpediaId);
        var result = new Dictionary<int, string>();
        if (TryReadLocalExport(neuronpediaId) is { } export)
        {
            foreach (var f in features)
            {
                if (export.Descriptions.TryGetValue(f, out var d))
                {
                    result[f] = d;
                }
            }

            return result.AsReadOnly();
        }

        foreach (var f in features.Distinct())
        {
            try
            {
                var explanations = await GetFeatureAsync(neuronpediaId, f, cancellationToken).ConfigureAwait(false);
                if (explanations.Count > 0)
                {
                    result[f] = explanations[0].Description;
                }
            }
            catch (NeuronpediaException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                // Neuronpedia does not have this feature: no description.
            }
        }

        return result.AsReadOnly();
    }

    /// <summary>Disposes the <see cref="HttpClient"/> if this client created it.</summary>
    public void Dispose() => _http.Dispose();

    internal static (string ModelId, string SourceId) SplitId(string neuronpediaId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(neuronpediaId);
        var parts = neuronpediaId.Split('/');
        if (parts.Length != 2 || !IsSafeSegment(parts[0]) || !IsSafeSegment(parts[1]))
        {
            throw new ArgumentException(
                $"Neuronpedia id '{neuronpediaId}' must be '{{modelId}}/{{sourceId}}' of letters, digits, '.', '_' and '-', e.g. 'gemma-2-2b/20-gemmascope-res-16k'.",
                nameof(neuronpediaId));
        }

        return (parts[0], parts[1]);
    }

    private static bool IsSafeSegment(string s) =>
        s.Length > 0 && s != "." && s != ".." && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    private string CacheExportFolder(string modelId, string sourceId) => Path.Combine(CacheDirectory, "v1", modelId, sourceId, "explanations");

    // The user's export folder first, then a complete cached export; null when neither has this SAE.
    private NeuronpediaExport? TryReadLocalExport(string neuronpediaId)
    {
        var (modelId, sourceId) = SplitId(neuronpediaId);
        if (ExportDirectory is not null)
        {
            var user = Path.Combine(ExportDirectory, "v1", modelId, sourceId, "explanations");
            if (NeuronpediaExport.BatchFiles(user).Count > 0)
            {
                return NeuronpediaExport.Read(user, neuronpediaId);
            }
        }

        var cached = CacheExportFolder(modelId, sourceId);
        return File.Exists(Path.Combine(cached, CompleteMarker)) ? NeuronpediaExport.Read(cached, neuronpediaId) : null;
    }

    private static List<FeatureExplanation> ParseFeatureList(JsonElement root, string modelId, string sourceId, int index, string where)
    {
        var list = new List<FeatureExplanation>();
        if (!root.TryGetProperty("explanations", out var explanations) || explanations.ValueKind == JsonValueKind.Null)
        {
            return list;
        }

        if (explanations.ValueKind != JsonValueKind.Array)
        {
            throw new NeuronpediaException($"{where}: field 'explanations' must be an array, found {explanations.ValueKind}.");
        }

        var i = 0;
        foreach (var e in explanations.EnumerateArray())
        {
            var at = string.Create(CultureInfo.InvariantCulture, $"{where}, explanations[{i++}]");
            if (e.ValueKind != JsonValueKind.Object)
            {
                throw new NeuronpediaException($"{at}: expected a JSON object, found {e.ValueKind}.");
            }

            list.Add(new FeatureExplanation(
                modelId, sourceId, index, NeuronpediaExport.RequiredString(e, "description", at),
                NeuronpediaExport.OptionalString(e, "typeName", at), NeuronpediaExport.OptionalString(e, "explanationModelName", at)));
        }

        return list;
    }

    private static IReadOnlyList<FeatureExplanation> ParseFeature(string json, string modelId, string sourceId, int index, string where)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new NeuronpediaException($"{where}: expected a JSON object, found {doc.RootElement.ValueKind}.");
            }

            if (doc.RootElement.TryGetProperty("index", out _) && NeuronpediaExport.ReadIndex(doc.RootElement, where) != index)
            {
                throw new NeuronpediaException($"{where}: the answer is of feature {doc.RootElement.GetProperty("index").GetRawText()}, expected {index}.");
            }

            return ParseFeatureList(doc.RootElement, modelId, sourceId, index, where).AsReadOnly();
        }
        catch (JsonException e)
        {
            throw new NeuronpediaException($"{where}: not JSON ({e.Message}).", innerException: e);
        }
    }

    private async Task<string> GetStringAsync(Uri url, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.Timeout);
        try
        {
            using var response = await _http.Client.GetAsync(url, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new NeuronpediaException(
                    $"Neuronpedia answered {(int)response.StatusCode} {response.ReasonPhrase} for {url}" +
                    (response.StatusCode == HttpStatusCode.NotFound ? ": no such feature or SAE." : "."),
                    response.StatusCode);
            }

            return await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new NeuronpediaException($"Neuronpedia did not answer {url} within {Options.Timeout.TotalSeconds:0} s.", innerException: e);
        }
        catch (HttpRequestException e)
        {
            throw new NeuronpediaException($"Could not reach Neuronpedia at {url}: {e.Message}", innerException: e);
        }
    }

    // Downloads one batch to a temporary file and renames it; false when the file does not exist (404, or 403 from the bucket).
    private async Task<bool> DownloadIfPresentAsync(Uri url, string path, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.Timeout);
        var temp = path + ".incomplete";
        try
        {
            using var response = await _http.Client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
            {
                return false; // the bucket answers 403 for keys it does not have
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new NeuronpediaException($"Neuronpedia's exports answered {(int)response.StatusCode} {response.ReasonPhrase} for {url}.", response.StatusCode);
            }

            var total = response.Content.Headers.ContentLength;
            await using (var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false))
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                var buffer = new byte[81920];
                long done = 0;
                int read;
                while ((read = await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false)) > 0)
                {
                    await file.WriteAsync(buffer.AsMemory(0, read), timeout.Token).ConfigureAwait(false);
                    done += read;
                    progress?.Report(new DownloadProgress("neuronpedia", url.AbsolutePath.TrimStart('/'), done, total));
                }

                if (total is long t && done != t)
                {
                    throw new NeuronpediaException($"{url}: the connection ended after {done} of {t} bytes.");
                }
            }

            File.Move(temp, path, overwrite: true);
            return true;
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new NeuronpediaException($"Neuronpedia's exports stalled on {url} (no completion within {Options.Timeout.TotalSeconds:0} s).", innerException: e);
        }
        catch (HttpRequestException e)
        {
            throw new NeuronpediaException($"Could not download {url}: {e.Message}", innerException: e);
        }
        catch (IOException e) when (e is not NeuronpediaException)
        {
            throw new NeuronpediaException($"Could not download {url}: {e.Message}", innerException: e);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static Uri ParseEndpoint(string text, string what)
    {
        var trimmed = text.TrimEnd('/') + "/";
        if (!Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"Neuronpedia endpoint '{text}' ({what}) is not an absolute http(s) URL.");
        }

        return uri;
    }

    private static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";
}
