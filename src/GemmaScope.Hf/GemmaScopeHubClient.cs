using System.Globalization;
using System.Net;
using System.Text.Json;

namespace GemmaScope.Hf;

/// <summary>
/// Finds, downloads and caches Gemma Scope SAEs from the Hugging Face hub, sharing Python <c>huggingface_hub</c>'s cache.
/// </summary>
/// <remarks>
/// Thread-safe: one instance (e.g. a DI singleton) serves concurrent calls; concurrent downloads of one file, in this or
/// another process, are serialised by a lock file in <c>{cache}/.locks</c>.
/// </remarks>
public sealed partial class GemmaScopeHubClient : IDisposable
{
    // How long a cached tree listing of a branch is used before it is fetched again (a miss refetches it at once anyway).
    internal static readonly TimeSpan ListingTimeToLive = TimeSpan.FromDays(1);

    private readonly HttpClientLease _http;
    private readonly HubFileDownloader _downloader;

    /// <summary>A client with its own <see cref="HttpClient"/> (disposed with the client).</summary>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables; null for the environment alone.</param>
    public GemmaScopeHubClient(GemmaScopeHubOptions? options = null)
        : this(HttpClientLease.Own(followRedirects: false), options)
    {
    }

    /// <summary>A client on a caller's <see cref="HttpClient"/>, which it does not dispose.</summary>
    /// <param name="httpClient">
    /// Must not follow redirects itself (<see cref="SocketsHttpHandler.AllowAutoRedirect"/> = false): the hub's metadata is on
    /// its redirect answer, and the client follows redirects itself, without sending the token to other hosts.
    /// </param>
    /// <param name="options">Overrides of the <c>HF_*</c> environment variables; null for the environment alone.</param>
    public GemmaScopeHubClient(HttpClient httpClient, GemmaScopeHubOptions? options = null)
        : this(HttpClientLease.Borrow(httpClient, nameof(httpClient)), options)
    {
    }

    private GemmaScopeHubClient(HttpClientLease http, GemmaScopeHubOptions? options)
    {
        _http = http;
        Options = options ?? new GemmaScopeHubOptions();
        _downloader = new HubFileDownloader(http.Client, HubSettings.Resolve(Options));
    }

    /// <summary>The options this client was made with (environment variables were read once, at construction).</summary>
    public GemmaScopeHubOptions Options { get; }

    /// <summary>The hub cache folder in use (the one holding <c>models--google--…</c>).</summary>
    public string CacheDirectory => _downloader.Settings.CacheDirectory;

    /// <summary>The hub address in use.</summary>
    public Uri Endpoint => _downloader.Settings.Endpoint;

    /// <summary>True when the client only reads the cache.</summary>
    public bool IsOffline => _downloader.Settings.Offline;

    /// <summary>
    /// Looks an SAE up: in the compiled-in catalog first; an id of the right shape that the catalog lacks is looked for in the
    /// hub's listing of its folder (fetched once, then read from the cache; fetched again when the cached one lacks the id).
    /// </summary>
    /// <param name="release">A release name such as <c>gemma-scope-2b-pt-res</c> or <c>gemma-scope-2b-pt-res-canonical</c>.</param>
    /// <param name="saeId">An id such as <c>layer_20/width_16k/average_l0_71</c> or <c>layer_20/width_16k/canonical</c>.</param>
    /// <param name="cancellationToken">Cancels the listing request.</param>
    /// <exception cref="ArgumentException">Unknown release or SAE; the message lists the closest names.</exception>
    /// <exception cref="HuggingFaceHubException">The listing could not be fetched (other than a 404, which means an unknown id).</exception>
    public async Task<GemmaScopeSae> ResolveAsync(string release, string saeId, CancellationToken cancellationToken = default)
    {
        var rel = GemmaScopeCatalog.GetRelease(release);
        ArgumentNullException.ThrowIfNull(saeId);
        if (rel.TryGetSae(saeId, out var known))
        {
            return known;
        }

        if (!rel.TryParseId(saeId, out var parts))
        {
            throw new ArgumentException(rel.UnknownIdMessage(saeId, rel.SaeIds), nameof(saeId));
        }

        List<int>? listed = null;
        string why;
        try
        {
            bool cached;
            (listed, cached) = await ListAverageL0Async(rel.RepoId, parts.Folder, refresh: false, cancellationToken).ConfigureAwait(false);

            // A cached listing of a branch goes stale as the hub gains SAEs: on a miss, ask the hub again (once). A listing at a
            // commit cannot change, and offline mode must not ask.
            var settings = _downloader.Settings;
            if (cached && !settings.Offline && !HubRevision.IsCommitHash(settings.Revision)
                && (parts.AverageL0 is int wanted ? !listed.Contains(wanted) : listed.Count == 0))
            {
                (listed, _) = await ListAverageL0Async(rel.RepoId, parts.Folder, refresh: true, cancellationToken).ConfigureAwait(false);
            }

            why = $" The hub's listing of {rel.RepoId}/{parts.Folder} does not have it either.";
        }
        catch (HuggingFaceHubException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            why = $" The hub has no folder {rel.RepoId}/{parts.Folder}.";
        }
        catch (HuggingFaceHubException e) when (e.StatusCode is null && IsOffline)
        {
            why = " It is not in the compiled-in catalog, and offline mode has no cached listing of its folder.";
        }

        if (listed is { Count: > 0 })
        {
            if (parts.AverageL0 is int n && listed.Contains(n))
            {
                return rel.FromListing(parts, parts.Id);
            }

            if (rel.IsCanonical)
            {
                var pick = listed[GemmaScopeCatalog.ClosestTo100(listed)];
                return rel.FromListing(parts with { AverageL0 = pick }, string.Create(CultureInfo.InvariantCulture, $"{parts.Folder}/average_l0_{pick}"));
            }
        }

        var candidates = rel.SaeIds.Concat(listed?.Select(n => string.Create(CultureInfo.InvariantCulture, $"{parts.Folder}/average_l0_{n}")) ?? []);
        throw new ArgumentException(rel.UnknownIdMessage(saeId, candidates.Distinct()) + why, nameof(saeId));
    }

    /// <summary>
    /// The SAE ids the hub lists in one folder of a release, e.g. (<c>gemma-scope-2b-pt-res</c>, <c>layer_20/width_16k</c>) ->
    /// <c>layer_20/width_16k/average_l0_22</c>, …, ascending by average L0. The listing is fetched from the hub's tree API once
    /// and then read from the cache for a day (<paramref name="refresh"/> fetches it again at once; offline, the cache is used
    /// at any age).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown release, or a folder that is not <c>layer_{l}/width_{w}</c> or <c>embedding/width_{w}</c>.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused the listing (e.g. 404: no such folder), or offline mode has none cached.</exception>
    public async Task<IReadOnlyList<string>> ListSaeIdsAsync(string release, string folder, bool refresh = false, CancellationToken cancellationToken = default)
    {
        var rel = GemmaScopeCatalog.GetRelease(release);
        ArgumentNullException.ThrowIfNull(folder);
        if (!rel.TryParseId(folder + (rel.IsCanonical ? "/canonical" : "/average_l0_0"), out _))
        {
            throw new ArgumentException(
                $"'{folder}' is not a folder of {rel.Name}: expected 'layer_{{0..{rel.LayerCount - 1}}}/width_{{{string.Join('|', SaeWidths.Names)}}}' or 'embedding/width_4k'.",
                nameof(folder));
        }

        var (listed, _) = await ListAverageL0Async(rel.RepoId, folder, refresh, cancellationToken).ConfigureAwait(false);
        return listed.ConvertAll(n => string.Create(CultureInfo.InvariantCulture, $"{folder}/average_l0_{n}")).AsReadOnly();
    }

    /// <summary>Downloads (or finds in the cache) the <c>params.npz</c> of an SAE and returns its local path.</summary>
    /// <param name="release">A release name such as <c>gemma-scope-2b-pt-res</c>.</param>
    /// <param name="saeId">An SAE id such as <c>layer_20/width_16k/average_l0_71</c>.</param>
    /// <param name="progress">Receives byte counts while downloading; nothing when the file is cached.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is kept and resumed by the next call.</param>
    /// <returns>The path under <c>snapshots/&lt;commit&gt;/</c> in the cache.</returns>
    /// <exception cref="ArgumentException">Unknown release or SAE; the message lists the closest names.</exception>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    public async Task<string> DownloadAsync(
        string release, string saeId, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var sae = await ResolveAsync(release, saeId, cancellationToken).ConfigureAwait(false);
        return await DownloadAsync(sae, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads (or finds in the cache) the <c>params.npz</c> of a catalog SAE and returns its local path.</summary>
    /// <param name="sae">From <see cref="ResolveAsync"/> or <see cref="GemmaScopeCatalog.GetSae"/>.</param>
    /// <param name="progress">Receives byte counts while downloading; nothing when the file is cached.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is kept and resumed by the next call.</param>
    /// <returns>The path under <c>snapshots/&lt;commit&gt;/</c> in the cache.</returns>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    public Task<string> DownloadAsync(GemmaScopeSae sae, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sae);
        return DownloadFileAsync(sae.RepoId, sae.FilePath, progress, cancellationToken);
    }

    /// <summary>Downloads (or finds in the cache) any file of a hub model repository at <see cref="GemmaScopeHubOptions.Revision"/>.</summary>
    /// <param name="repoId">e.g. <c>google/gemma-scope-2b-pt-res</c>.</param>
    /// <param name="path">The file in the repository, '/'-separated, e.g. <c>layer_20/width_16k/average_l0_71/params.npz</c>.</param>
    /// <param name="progress">Receives byte counts while downloading.</param>
    /// <param name="cancellationToken">Cancels the download; a partial file is kept and resumed by the next call.</param>
    /// <returns>The path under <c>snapshots/&lt;commit&gt;/</c> in the cache.</returns>
    /// <exception cref="HuggingFaceHubException">The hub refused or failed, the bytes did not verify, or offline mode lacks the file.</exception>
    public Task<string> DownloadFileAsync(
        string repoId, string path, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        HubCacheLayout.ValidateRepoId(repoId);
        HubCacheLayout.ValidateRepoPath(path, nameof(path));
        return _downloader.DownloadAsync(repoId, path, progress, cancellationToken);
    }

    /// <summary>Disposes the <see cref="HttpClient"/> if this client created it.</summary>
    public void Dispose() => _http.Dispose();

    // The average_l0 numbers under one folder, from the cached listing (Cached = true) or the hub's tree API.
    private async Task<(List<int> Numbers, bool Cached)> ListAverageL0Async(string repoId, string folder, bool refresh, CancellationToken ct)
    {
        var settings = _downloader.Settings;
        var cachePath = new HubCacheLayout(settings.CacheDirectory, repoId).TreeListingPath(settings.Revision, folder);
        var cached = File.Exists(cachePath);

        // A listing at a commit never changes; one of a branch is fetched again once it is older than its time to live.
        if (cached && (settings.Offline || (!refresh && (HubRevision.IsCommitHash(settings.Revision)
            || DateTime.UtcNow - File.GetLastWriteTimeUtc(cachePath) < ListingTimeToLive))))
        {
            return (ReadListing(cachePath), true);
        }

        if (settings.Offline)
        {
            throw new HuggingFaceHubException(
                $"Offline mode (HF_HUB_OFFLINE or options.Offline): no cached listing of {repoId}/{folder} at revision '{settings.Revision}' ({cachePath} is missing).");
        }

        List<HubTreeEntry> entries;
        try
        {
            entries = await _downloader.ListTreeAsync(repoId, folder, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (HubFileDownloader.IsConnectionFailure(e, ct))
        {
            if (cached)
            {
                return (ReadListing(cachePath), true); // the hub is unreachable: an old listing beats none
            }

            throw new HuggingFaceHubException(
                $"Cannot list the average_l0_* folders under {repoId}/{folder} (needed for an id outside the compiled-in catalog): cannot reach the hub at " +
                $"{settings.Endpoint}: {_downloader.Reason(e)}. {HubFileDownloader.WhatToDo}",
                innerException: e);
        }

        var numbers = new SortedSet<int>();
        var prefix = folder + "/average_l0_";
        foreach (var entry in entries)
        {
            if (entry.Type == "directory" && entry.Path.StartsWith(prefix, StringComparison.Ordinal)
                && int.TryParse(entry.Path.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                numbers.Add(n);
            }
        }

        var list = numbers.ToList();
        HubCacheLayout.WriteAllTextAtomic(cachePath, JsonSerializer.Serialize(list));
        return (list, false);
    }

    private static List<int> ReadListing(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<List<int>>(File.ReadAllText(path)) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new HuggingFaceHubException($"The cached hub listing {path} is not a JSON array of integers ({e.Message}); delete it to fetch it again.", innerException: e);
        }
    }
}
