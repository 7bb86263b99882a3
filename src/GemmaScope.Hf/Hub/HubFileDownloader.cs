using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace GemmaScope.Hf;

/// <summary>
/// Downloads hub files into the <c>huggingface_hub</c> cache, the way <c>hf_hub_download</c> does: HEAD the resolve URL
/// (following relative redirects only) for X-Repo-Commit, ETag/X-Linked-Etag and size; reuse a cached blob; else GET the
/// (CDN) location to <c>blobs/&lt;etag&gt;.incomplete</c>, resuming with Range, verify, rename, link the snapshot.
/// </summary>
/// <remarks>Thread-safe: concurrent downloads of one blob, in this or another process, are serialised by a lock file.</remarks>
internal sealed class HubFileDownloader
{
    private const int MaxRedirects = 10;
    private const int BufferSize = 1 << 20;
    private const string UserAgent = "GemmaScope.NET/0.1 (hub client; like huggingface_hub)";

    private readonly HttpClient _http;

    public HubFileDownloader(HttpClient http, HubSettings settings)
    {
        _http = http;
        Settings = settings;
    }

    public HubSettings Settings { get; }

    // Uri.ToString() ends a bare authority with '/'; the endpoint may also carry a path (a mirror under /hf).
    private string EndpointBase => Settings.Endpoint.ToString().TrimEnd('/');

    public Task<string> DownloadAsync(string repoId, string path, IProgress<DownloadProgress>? progress, CancellationToken ct) =>
        DownloadAsync(repoId, path, Settings.Revision, progress, ct);

    public async Task<string> DownloadAsync(string repoId, string path, string revision, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        HubCacheLayout.ValidateRepoPath(path, nameof(path));
        var cache = new HubCacheLayout(Settings.CacheDirectory, repoId);

        // A commit names immutable content: a cached file for it needs no request (huggingface_hub does the same).
        if (HubRevision.IsCommitHash(revision) && cache.TryGetCached(revision, path, out _) is { } pinned)
        {
            return pinned;
        }

        if (Settings.Offline)
        {
            return cache.TryGetCached(revision, path, out var missing)
                ?? throw new HuggingFaceHubException(
                    $"Offline mode (HF_HUB_OFFLINE or options.Offline): '{path}' of {repoId} at revision '{revision}' is not in the cache " +
                    $"{Settings.CacheDirectory}: {missing}. Download it once online, or copy a huggingface_hub cache there.");
        }

        FileMetadata meta;
        try
        {
            meta = await HeadAsync(repoId, path, revision, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (IsConnectionFailure(e, ct))
        {
            // Like huggingface_hub: when the hub cannot be reached, a cached copy of the revision is good enough.
            return cache.TryGetCached(revision, path, out var missing)
                ?? throw new HuggingFaceHubException(
                    $"Cannot reach the hub at {EndpointBase} for '{path}' of {repoId}: {Reason(e)}; and it is not cached: {missing}. {WhatToDo}",
                    innerException: e);
        }

        if (revision != meta.Commit)
        {
            cache.WriteRef(revision, meta.Commit);
        }

        return await FetchAsync(cache, repoId, path, meta, progress, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The snapshot file for metadata from <see cref="HeadAsync"/>: already there, or linked to a cached blob, or downloaded
    /// (under the blob's lock; resumed, verified, renamed, linked).
    /// </summary>
    public async Task<string> FetchAsync(
        HubCacheLayout cache, string repoId, string path, FileMetadata meta, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        var snapshot = cache.SnapshotPath(meta.Commit, path);
        if (File.Exists(snapshot))
        {
            return snapshot;
        }

        var blob = cache.BlobPath(meta.ETag);
        using (await AcquireLockAsync(cache.LockPath(meta.ETag), ct).ConfigureAwait(false))
        {
            if (!File.Exists(blob))
            {
                await DownloadBlobAsync(cache, repoId, path, meta, progress, ct).ConfigureAwait(false);
            }

            return cache.LinkSnapshot(meta.Commit, path, meta.ETag);
        }
    }

    /// <summary>One page-followed listing of the hub's tree API: <c>{endpoint}/api/models/{repo}/tree/{revision}/{folder}</c>.</summary>
    public async Task<List<HubTreeEntry>> ListTreeAsync(string repoId, string folder, CancellationToken ct)
    {
        HubCacheLayout.ValidateRepoId(repoId);
        HubCacheLayout.ValidateRepoPath(folder, nameof(folder));
        var entries = new List<HubTreeEntry>();
        Uri? url = new(EndpointBase + "/api/models/" + repoId + "/tree/" + Uri.EscapeDataString(Settings.Revision) + "/" + EscapePath(folder));
        for (var page = 0; url is not null; page++)
        {
            if (page > 1000)
            {
                throw new HuggingFaceHubException($"The hub's listing of {repoId}/{folder} did not end after 1000 pages ({url}).");
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(Settings.MetadataTimeout);
            using var request = NewRequest(HttpMethod.Get, url, withToken: true);
            using var response = await SendFollowingRedirectsAsync(request, followAbsolute: true, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw StatusError(response, repoId, folder, $"listing of folder '{folder}'");
            }

            var body = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
            entries.AddRange(ParseTree(body, url));
            url = NextPage(response, url);
        }

        return entries;
    }

    /// <summary>
    /// HEAD of <c>{endpoint}/{repo}/resolve/{revision}/{path}</c> (relative redirects followed): commit, ETag, size, and where
    /// the bytes are. Throws <see cref="HuggingFaceHubException"/> with the hub's status for a refusal.
    /// </summary>
    public async Task<FileMetadata> HeadAsync(string repoId, string path, string revision, CancellationToken ct)
    {
        var url = new Uri(EndpointBase + "/" + repoId + "/resolve/" + Uri.EscapeDataString(revision) + "/" + EscapePath(path));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Settings.MetadataTimeout);
        using var request = NewRequest(HttpMethod.Head, url, withToken: true);
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));

        // Relative redirects (renamed repositories) are followed; an absolute one (the CDN) is where the bytes are, and
        // the hub's own answer carrying it also carries the metadata, as with huggingface_hub.
        using var response = await SendFollowingRedirectsAsync(request, followAbsolute: false, timeout.Token).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        if (status is < 200 or >= 400)
        {
            throw StatusError(response, repoId, path, $"file '{path}' at revision '{revision}'", revision);
        }

        var commit = Header(response, "X-Repo-Commit");
        var etag = NormalizeETag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag"));
        if (commit is null || etag is null)
        {
            throw new HuggingFaceHubException(
                $"The answer for '{path}' of {repoId} from {response.RequestMessage?.RequestUri} has no {(commit is null ? "X-Repo-Commit" : "ETag")} header: " +
                "it does not look like the Hugging Face hub. (A custom HttpClient must not follow redirects itself: AllowAutoRedirect = false.)");
        }

        if (!HubRevision.IsCommitHash(commit))
        {
            throw new HuggingFaceHubException($"The hub sent X-Repo-Commit '{commit}' for '{path}' of {repoId}; expected a 40-hex commit hash.");
        }

        if (!IsSafeETag(etag))
        {
            throw new HuggingFaceHubException($"The hub sent ETag '{etag}' for '{path}' of {repoId}; expected hex digits (a git or LFS object id).");
        }

        long? size = long.TryParse(Header(response, "X-Linked-Size"), NumberStyles.None, CultureInfo.InvariantCulture, out var linked)
            ? linked
            : response.Content.Headers.ContentLength;
        var location = status is >= 300 and < 400 && response.Headers.Location is { } loc
            ? new Uri(response.RequestMessage!.RequestUri!, loc)
            : response.RequestMessage!.RequestUri!;
        return new FileMetadata(commit, etag, size, location);
    }

    private async Task DownloadBlobAsync(
        HubCacheLayout cache, string repoId, string path, FileMetadata meta, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        var incomplete = cache.IncompletePath(meta.ETag);
        Directory.CreateDirectory(Path.GetDirectoryName(incomplete)!);
        var verifySha = Settings.VerifySha256 && HubRevision.IsSha256(meta.ETag);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await DownloadToIncompleteAsync(incomplete, repoId, path, meta, progress, ct).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (IsConnectionFailure(e, ct))
            {
                var kept = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
                if (attempt >= Settings.DownloadRetries)
                {
                    throw new HuggingFaceHubException(
                        $"Download of '{path}' of {repoId} from {meta.Location} broke after {kept} of {meta.Size?.ToString(CultureInfo.InvariantCulture) ?? "?"} bytes " +
                        $"({e.Message}), {attempt + 1} attempt(s). The partial file {incomplete} is kept; the next call resumes from it.",
                        innerException: e);
                }
            }
        }

        var length = new FileInfo(incomplete).Length;
        if (meta.Size is long expected && length != expected)
        {
            File.Delete(incomplete);
            throw new HuggingFaceHubException(
                $"Download of '{path}' of {repoId} has {length} bytes but the hub announced {expected}; the download was discarded.");
        }

        if (verifySha)
        {
            var actual = await Sha256HexAsync(incomplete, ct).ConfigureAwait(false);
            if (!string.Equals(actual, meta.ETag, StringComparison.OrdinalIgnoreCase))
            {
                File.Delete(incomplete);
                throw new HuggingFaceHubException(
                    $"SHA-256 of the download of '{path}' of {repoId} is {actual}, but the hub's LFS ETag is {meta.ETag}: the file is corrupt " +
                    "and was discarded (nothing was added to the cache).");
            }
        }

        File.Move(incomplete, cache.BlobPath(meta.ETag), overwrite: true);
    }

    // Appends to the .incomplete file from where it stops (Range: bytes=N-); starts over when the server ignores the range.
    private async Task DownloadToIncompleteAsync(
        string incomplete, string repoId, string path, FileMetadata meta, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        await using var file = new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        var have = file.Length;
        if (meta.Size is long size && have > size)
        {
            file.SetLength(0);
            have = 0;
        }

        if (meta.Size is long complete && have == complete && complete > 0)
        {
            return;
        }

        using var request = NewRequest(HttpMethod.Get, meta.Location, withToken: IsHubHost(meta.Location));
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
        if (have > 0)
        {
            request.Headers.Range = new RangeHeaderValue(have, null);
        }

        // The watchdog: re-armed before every wait for bytes (the answer's headers, then each read), so that a transfer that
        // goes quiet for DownloadTimeout is dropped (and resumed by the caller) while a slow but moving one never is.
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var quiet = Settings.DownloadTimeout;
        stall.CancelAfter(quiet);
        using var response = await StallGuard(SendFollowingRedirectsAsync(request, followAbsolute: true, stall.Token), stall, quiet, have, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == have)
        {
            file.Seek(have, SeekOrigin.Begin);
        }
        else if (response.StatusCode == HttpStatusCode.OK)
        {
            file.SetLength(0);
            have = 0;
        }
        else
        {
            throw StatusError(response, repoId, path, $"download of '{path}'" + (have > 0 ? $" from byte {have}" : string.Empty));
        }

        progress?.Report(new DownloadProgress(repoId, path, have, meta.Size));
        stall.CancelAfter(quiet);
        await using var body = await StallGuard(response.Content.ReadAsStreamAsync(stall.Token), stall, quiet, have, ct).ConfigureAwait(false);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            var lastReport = have;
            int read;
            while (true)
            {
                stall.CancelAfter(quiet);
                read = await StallGuard(body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token).AsTask(), stall, quiet, have, ct).ConfigureAwait(false);
                stall.CancelAfter(Timeout.InfiniteTimeSpan); // a slow disk is not a stalled network
                if (read == 0)
                {
                    break;
                }

                await file.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                have += read;
                if (meta.Size is long limit && have > limit)
                {
                    throw new HuggingFaceHubException($"The hub sent more than the announced {limit} bytes for '{path}' of {repoId}.");
                }

                if (have - lastReport >= BufferSize)
                {
                    await file.FlushAsync(ct).ConfigureAwait(false);
                    progress?.Report(new DownloadProgress(repoId, path, have, meta.Size));
                    lastReport = have;
                }
            }

            await file.FlushAsync(ct).ConfigureAwait(false);
            if (meta.Size is long total && have < total)
            {
                throw new IOException($"The connection closed after {have} of {total} bytes.");
            }

            progress?.Report(new DownloadProgress(repoId, path, have, meta.Size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Turns the watchdog's cancellation into a TimeoutException (an IOException: the connection is treated as broken and the
    // download resumes); the caller's own cancellation passes through as it is.
    private static async Task<T> StallGuard<T>(Task<T> wait, CancellationTokenSource stall, TimeSpan quiet, long have, CancellationToken ct)
    {
        try
        {
            return await wait.ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (stall.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new StalledDownloadException(
                string.Create(CultureInfo.InvariantCulture, $"no bytes for {quiet.TotalSeconds:0.###} s after byte {have} (HF_HUB_DOWNLOAD_TIMEOUT or options.DownloadTimeout)"),
                e);
        }
    }

    private async Task<HttpResponseMessage> SendFollowingRedirectsAsync(HttpRequestMessage first, bool followAbsolute, CancellationToken ct)
    {
        var request = first;
        for (var hop = 0; ; hop++)
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is < 300 or >= 400 || response.Headers.Location is not { } location)
            {
                return response;
            }

            if (!followAbsolute && location.IsAbsoluteUri)
            {
                return response;
            }

            if (hop >= MaxRedirects)
            {
                response.Dispose();
                throw new HuggingFaceHubException($"More than {MaxRedirects} redirects from {first.RequestUri}.");
            }

            var next = new Uri(request.RequestUri!, location);
            response.Dispose();

            var nextRequest = NewRequest(request.Method, next, withToken: IsHubHost(next));
            foreach (var header in first.Headers)
            {
                if (header.Key != "Authorization")
                {
                    nextRequest.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }

            if (request != first)
            {
                request.Dispose();
            }

            request = nextRequest;
        }
    }

    // The token goes only to the hub itself (scheme, host and port of the endpoint), never to the CDN or any other host.
    private bool IsHubHost(Uri url) =>
        Uri.Compare(url, Settings.Endpoint, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private HttpRequestMessage NewRequest(HttpMethod method, Uri url, bool withToken)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        if (withToken && Settings.Token is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return request;
    }

    // Decided by the hub's X-Error-Code first, as huggingface_hub's hf_raise_for_status does: the hub answers 401 both for a
    // gated repository and, to a request without a token, for one that does not exist.
    private HuggingFaceHubException StatusError(HttpResponseMessage response, string repoId, string path, string what, string? revision = null)
    {
        var code = (int)response.StatusCode;
        var url = response.RequestMessage?.RequestUri;
        var errorCode = Header(response, "X-Error-Code");
        var serverMessage = Header(response, "X-Error-Message") is { } m ? $" The hub says: {m}" : string.Empty;
        var page = RepoPage(repoId);
        var tokenHelp = $"set HF_TOKEN (or options.Token) to an access token of that account ({EndpointBase}/settings/tokens)";
        var refused = response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden;
        var message = errorCode switch
        {
            "RepoNotFound" =>
                $"Repository {repoId} was not found on {EndpointBase} ({code} from {url}): check the id." +
                (Settings.Token is null
                    ? " If it is private, set HF_TOKEN (or options.Token) to an access token that can read it."
                    : " If it is private, the token sent cannot read it.") + serverMessage,
            "RevisionNotFound" =>
                $"Revision '{revision ?? Settings.Revision}' does not exist in {repoId} ({url}).{serverMessage}",
            "EntryNotFound" =>
                $"The {what} of {repoId} does not exist ({code} from {url}).{serverMessage}",
            "GatedRepo" when Settings.Token is null =>
                $"{code} {response.ReasonPhrase} for the {what} of {repoId} ({url}): {repoId} is gated and no token was sent: " +
                $"accept its licence at {page} while logged in, then {tokenHelp}.{serverMessage}",
            "GatedRepo" =>
                $"{code} {response.ReasonPhrase} for the {what} of {repoId} ({url}): {repoId} is gated and the token was refused: " +
                $"accept its licence at {page} with the token's account (access is granted per account), and check that the token is valid.{serverMessage}",
            _ when refused && Settings.Token is null =>
                $"{code} {response.ReasonPhrase} for the {what} of {repoId} ({url}): the repository is gated or private and no token was sent: " +
                $"if gated, accept its licence at {page} while logged in, then {tokenHelp}.{serverMessage}",
            _ when refused =>
                $"{code} {response.ReasonPhrase} for the {what} of {repoId} ({url}): the token was refused. Check that it is valid and that its " +
                $"account accepted the licence at {page}.{serverMessage}",
            _ when response.StatusCode == HttpStatusCode.NotFound =>
                $"The {what} of {repoId} does not exist (404 from {url}).{serverMessage}",
            _ => $"{code} {response.ReasonPhrase} for the {what} of {repoId} ({url}).{serverMessage}",
        };
        return new HuggingFaceHubException(message, response.StatusCode);
    }

    /// <summary>The repository's page on the hub (where a gated model's licence is accepted).</summary>
    internal string RepoPage(string repoId) => EndpointBase + "/" + repoId;

    private static async Task<IDisposable> AcquireLockAsync(string lockPath, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None); // left in place afterwards, like huggingface_hub's lock files
            }
            catch (IOException)
            {
                // Held by another download of the same blob; it will finish or fail, then this one goes on.
                await Task.Delay(50, ct).ConfigureAwait(false);
            }
        }
    }

    private static async Task<string> Sha256HexAsync(string path, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var hash = await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>True for a failure to reach or keep talking to the server (not a status, not the caller's cancellation).</summary>
    /// <summary>What to do when the hub cannot be reached (appended to those messages).</summary>
    internal const string WhatToDo =
        "Check the network connection and HF_ENDPOINT; a slow hub needs a longer HF_HUB_ETAG_TIMEOUT (seconds); with the files already cached, set HF_HUB_OFFLINE=1.";

    /// <summary>A connection failure in words: "timed out after N s" for a metadata timeout, else the socket's message.</summary>
    internal string Reason(Exception e) => e is OperationCanceledException
        ? $"timed out after {Settings.MetadataTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s without an answer (HF_HUB_ETAG_TIMEOUT)"
        : e.Message;

    internal static bool IsConnectionFailure(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is HttpRequestException { StatusCode: null } or IOException and not HuggingFaceHubException
            or OperationCanceledException; // a metadata timeout, not the caller's cancellation

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault()
            : null;

    // huggingface_hub's _normalize_etag: drop a weak 'W/' prefix and the quotes.
    private static string? NormalizeETag(string? etag) =>
        etag is null ? null : (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    private static bool IsSafeETag(string etag) => etag.Length is > 0 and <= 128 && etag.All(char.IsAsciiHexDigit);

    private static string EscapePath(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    private static IEnumerable<HubTreeEntry> ParseTree(byte[] json, Uri url)
    {
        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
        {
            throw new HuggingFaceHubException($"The hub's tree listing {url} is not a JSON array.");
        }

        var entries = new List<HubTreeEntry>();
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            if (item.TryGetProperty("type", out var type) && item.TryGetProperty("path", out var path)
                && type.GetString() is { } t && path.GetString() is { } p)
            {
                entries.Add(new HubTreeEntry(t, p));
            }
        }

        return entries;
    }

    // The hub pages long listings with an RFC 8288 header: Link: <https://…?cursor=…>; rel="next".
    private static Uri? NextPage(HttpResponseMessage response, Uri current)
    {
        if (!response.Headers.TryGetValues("Link", out var links))
        {
            return null;
        }

        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var parts = link.Split(';');
            if (parts.Length >= 2 && parts.Skip(1).Any(p => p.Trim() is "rel=\"next\"" or "rel=next"))
            {
                var target = parts[0].Trim().TrimStart('<').TrimEnd('>');
                return new Uri(current, target);
            }
        }

        return null;
    }

    /// <summary>What the hub's HEAD said of one file: the commit it resolved to, its ETag (LFS: SHA-256), size, and where the bytes are.</summary>
    internal sealed record FileMetadata(string Commit, string ETag, long? Size, Uri Location);

    // A transfer that went quiet: an IOException, so that it counts as a broken connection and is resumed.
    private sealed class StalledDownloadException(string message, Exception inner) : IOException(message, inner);
}

/// <summary>One entry of the hub's tree listing: <c>type</c> is <c>directory</c> or <c>file</c>; <c>path</c> is relative to the repository root.</summary>
internal sealed record HubTreeEntry(string Type, string Path);
