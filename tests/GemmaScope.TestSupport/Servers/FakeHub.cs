using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace GemmaScope.TestSupport;

/// <summary>
/// A Kestrel server on 127.0.0.1 that answers like huggingface.co: <c>/{repo}/resolve/{rev}/{path}</c> (LFS files: 302 to a
/// CDN URL on another host name, <c>localhost</c>, with X-Linked-Etag/X-Linked-Size/X-Repo-Commit; small files: 200 with ETag),
/// <c>/api/models/{repo}/tree/{rev}/{path}</c> (paged with Link headers), Range requests, gated repositories, and fault injection.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Repo> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<Seen> _seen = new();

    private FakeHub(WebApplication app, int port)
    {
        _app = app;
        Port = port;
        Endpoint = $"http://127.0.0.1:{port}";
    }

    public int Port { get; }

    /// <summary>The hub address (127.0.0.1); the CDN is the same server under the host name <c>localhost</c>.</summary>
    public string Endpoint { get; }

    /// <summary>Every request the server received, in order.</summary>
    public IReadOnlyList<Seen> Requests => _seen.ToArray();

    /// <summary>Downloads from the CDN are cut (connection aborted) after this many body bytes, this many times.</summary>
    public long CutAfterBytes { get; set; } = -1;

    public int CutTimes { get; set; }

    /// <summary>Downloads from the CDN stall (headers and this many body bytes sent, then nothing) after this many bytes.</summary>
    public long StallAfterBytes { get; set; } = -1;

    /// <summary>How many downloads stall (see <see cref="StallAfterBytes"/>); later ones are served whole. Default: all.</summary>
    public int StallTimes { get; set; } = int.MaxValue;

    /// <summary>Completed when a download has stalled (sent <see cref="StallAfterBytes"/> and waits).</summary>
    public TaskCompletionSource Stalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The CDN flips one byte of every body it sends.</summary>
    public bool CorruptBodies { get; set; }

    /// <summary>Entries per tree page (the real hub pages at 1000; small here to test paging).</summary>
    public int TreePageSize { get; set; } = 1000;

    /// <summary>Repositories that answer 401 unless the request has <c>Authorization: Bearer {RequiredToken}</c>.</summary>
    public HashSet<string> GatedRepos { get; } = [];

    public string RequiredToken { get; set; } = "hf_test_token";

    /// <summary>The status for a repository the hub lacks: 404, or 401 as huggingface.co answers requests without a token.</summary>
    public int UnknownRepoStatus { get; set; } = 404;

    /// <summary>Old repository name -> new: resolve requests under the old one get a relative 307, like a renamed repo.</summary>
    public Dictionary<string, string> RenamedRepos { get; } = [];

    public static async Task<FakeHub> StartAsync()
    {
        FakeHub? hub = null;
        var (app, address) = await LoopbackServer.StartAsync(() => hub!.HandleAsync);
        hub = new FakeHub(app, new Uri(address).Port);
        return hub;
    }

    /// <summary>Publishes a file; LFS files get their SHA-256 as ETag, others a git-style 40-hex id.</summary>
    public FileEntry AddFile(string repoId, string path, byte[] content, bool lfs = true)
    {
        var repo = _repos.GetOrAdd(repoId, id => new Repo(CommitOf(id)));
        var etag = lfs
            ? Convert.ToHexStringLower(SHA256.HashData(content))
            : Convert.ToHexStringLower(SHA1.HashData(Encoding.ASCII.GetBytes($"blob {content.Length}\0").Concat(content).ToArray()));
        var entry = new FileEntry(path, content, etag, lfs);
        repo.Files[path] = entry;
        return entry;
    }

    /// <summary>The commit every revision of a repository resolves to (stable per name).</summary>
    public static string CommitOf(string repoId) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes("commit of " + repoId)));

    public int Count(string method, string pathContains) =>
        Requests.Count(r => r.Method == method && r.Path.Contains(pathContains, StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        var path = Uri.UnescapeDataString(req.Path.Value ?? string.Empty);
        _seen.Enqueue(new Seen(req.Method, req.Host.Host, path, req.Headers.Authorization.ToString(), req.Headers.Range.ToString()));
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            await ServeCdnAsync(ctx, path["/cdn/".Length..]);
            return;
        }

        var api = path.StartsWith("/api/models/", StringComparison.Ordinal);
        var parts = (api ? path["/api/models/".Length..] : path.TrimStart('/')).Split('/', 5);
        var verb = api ? "tree" : "resolve";
        if (parts.Length < 4 || parts[2] != verb)
        {
            ctx.Response.StatusCode = 404;
            return;
        }

        var repoId = parts[0] + "/" + parts[1];
        var revision = parts[3];
        var filePath = parts.Length == 5 ? parts[4] : string.Empty;
        if (!api && RenamedRepos.TryGetValue(repoId, out var renamed))
        {
            ctx.Response.StatusCode = 307;
            ctx.Response.Headers.Location = $"/{renamed}/resolve/{revision}/{filePath}";
            return;
        }

        if (!_repos.TryGetValue(repoId, out var repo))
        {
            Fail(ctx, UnknownRepoStatus, "RepoNotFound", $"Repository Not Found for url: {path}");
            return;
        }

        if (GatedRepos.Contains(repoId) && req.Headers.Authorization.ToString() != "Bearer " + RequiredToken)
        {
            Fail(ctx, 401, "GatedRepo", $"Access to model {repoId} is restricted. You must have access to it and be authenticated.");
            return;
        }

        if (revision != "main" && revision != repo.Commit)
        {
            Fail(ctx, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
            return;
        }

        ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
        if (api)
        {
            await ServeTreeAsync(ctx, repo, filePath);
            return;
        }

        if (!repo.Files.TryGetValue(filePath, out var file))
        {
            Fail(ctx, 404, "EntryNotFound", $"Entry not found for {filePath}");
            return;
        }

        if (file.Lfs)
        {
            // What huggingface.co does for LFS files: a 302 to the CDN whose own headers carry the metadata.
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers["X-Linked-Etag"] = $"\"{file.ETag}\"";
            ctx.Response.Headers["X-Linked-Size"] = file.Content.Length.ToString(CultureInfo.InvariantCulture);
            ctx.Response.Headers.ETag = "W/\"0123456789abcdef\"";
            ctx.Response.Headers.Location = $"http://localhost:{Port}/cdn/{file.ETag}";
            return;
        }

        ctx.Response.Headers.ETag = $"\"{file.ETag}\"";
        ctx.Response.ContentLength = file.Content.Length;
        if (HttpMethods.IsGet(req.Method))
        {
            await ctx.Response.Body.WriteAsync(file.Content);
        }
    }

    private async Task ServeCdnAsync(HttpContext ctx, string etag)
    {
        var file = _repos.Values.SelectMany(r => r.Files.Values).FirstOrDefault(f => f.ETag == etag);
        if (file is null)
        {
            ctx.Response.StatusCode = 404;
            return;
        }

        var body = file.Content;
        if (CorruptBodies)
        {
            body = (byte[])body.Clone();
            body[body.Length / 3] ^= 0x5A;
        }

        long start = 0;
        var range = ctx.Request.Headers.Range.ToString();
        if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range["bytes=".Length..^1], CultureInfo.InvariantCulture);
            if (start >= body.Length)
            {
                ctx.Response.StatusCode = 416;
                return;
            }

            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {start}-{body.Length - 1}/{body.Length}";
        }

        ctx.Response.Headers.ETag = $"\"{etag}\"";
        ctx.Response.ContentLength = body.Length - start;
        if (!HttpMethods.IsGet(ctx.Request.Method))
        {
            return;
        }

        var cut = CutTimes > 0 && CutAfterBytes >= 0 ? CutAfterBytes : -1;
        if (cut >= 0)
        {
            CutTimes--;
        }

        var stall = cut < 0 && StallTimes > 0 ? StallAfterBytes : -1;
        if (stall >= 0)
        {
            StallTimes--;
        }
        var limit = cut >= 0 ? Math.Min(cut, body.Length - start) : stall >= 0 ? Math.Min(stall, body.Length - start) : body.Length - start;
        await ctx.Response.Body.WriteAsync(body.AsMemory((int)start, (int)limit));
        await ctx.Response.Body.FlushAsync();
        if (cut >= 0)
        {
            await Task.Delay(100); // let the bytes reach the client: a reset can discard what it has not read yet
            ctx.Abort(); // the connection drops half-way, like a flaky network
            return;
        }

        if (stall >= 0)
        {
            Stalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            return;
        }
    }

    private async Task ServeTreeAsync(HttpContext ctx, Repo repo, string folder)
    {
        var prefix = folder.Length == 0 ? string.Empty : folder + "/";
        var children = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var path in repo.Files.Keys.Where(p => p.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var rest = path[prefix.Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            children[prefix + (slash < 0 ? rest : rest[..slash])] = slash < 0 ? "file" : "directory";
        }

        if (children.Count == 0)
        {
            Fail(ctx, 404, "EntryNotFound", $"{folder} does not exist on \"main\"");
            return;
        }

        var cursor = int.TryParse(ctx.Request.Query["cursor"], CultureInfo.InvariantCulture, out var c) ? c : 0;
        var page = children.Skip(cursor).Take(TreePageSize).Select(kv => new { type = kv.Value, oid = "0000", size = 0, path = kv.Key }).ToArray();
        if (cursor + TreePageSize < children.Count)
        {
            ctx.Response.Headers["Link"] = $"<{Endpoint}{ctx.Request.Path}?cursor={cursor + TreePageSize}>; rel=\"next\"";
        }

        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(JsonSerializer.Serialize(page));
    }

    private static void Fail(HttpContext ctx, int status, string code, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.Headers["X-Error-Code"] = code;
        ctx.Response.Headers["X-Error-Message"] = message;
    }

    public sealed record FileEntry(string Path, byte[] Content, string ETag, bool Lfs);

    public sealed record Seen(string Method, string Host, string Path, string Authorization, string Range);

    private sealed class Repo(string commit)
    {
        public string Commit { get; } = commit;

        public ConcurrentDictionary<string, FileEntry> Files { get; } = new(StringComparer.Ordinal);
    }
}
