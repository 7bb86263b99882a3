using System.Net;
using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>Downloads through a real HTTP server that answers like huggingface.co.</summary>
public sealed class HubDownloadTests : HubTestBase
{
    [Fact]
    public async Task Download_follows_the_CDN_redirect_and_writes_the_huggingface_hub_cache_layout()
    {
        var content = RandomBytes(300_001, seed: 1);
        var file = Hub.AddFile(Repo, SaeFile, content);
        var commit = FakeHub.CommitOf(Repo);
        using var client = new GemmaScopeHubClient(Options());

        var local = await client.DownloadAsync(Release, SaeId);

        var repoFolder = RepoFolder(Dir);
        Assert.Equal(Path.Combine(repoFolder, "snapshots", commit, "layer_20", "width_16k", "average_l0_71", "params.npz"), local);
        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(commit, await File.ReadAllTextAsync(Path.Combine(repoFolder, "refs", "main"))); // no trailing newline, like Python
        var blob = Path.Combine(repoFolder, "blobs", file.ETag);
        Assert.Equal(content, await File.ReadAllBytesAsync(blob));
        // Relative, as huggingface_hub writes it: up from average_l0_71, width_16k, layer_20, <commit>, snapshots.
        Assert.Equal(Path.Combine("..", "..", "..", "..", "..", "blobs", file.ETag), new FileInfo(local).LinkTarget);
        Assert.Equal(
            [Path.Combine("blobs", file.ETag), Path.Combine("snapshots", commit, "layer_20", "width_16k", "average_l0_71", "params.npz")],
            CachedFiles(Dir));

        // HEAD on the hub, then GET on the CDN host: the hub's metadata came from its 302, the bytes from the CDN.
        var seen = Hub.Requests;
        Assert.Equal(2, seen.Count);
        Assert.Equal(("HEAD", "127.0.0.1", $"/{Repo}/resolve/main/{SaeFile}"), (seen[0].Method, seen[0].Host, seen[0].Path));
        Assert.Equal(("GET", "localhost", $"/cdn/{file.ETag}"), (seen[1].Method, seen[1].Host, seen[1].Path));
    }

    [Fact]
    public async Task A_second_download_of_a_cached_file_sends_only_the_HEAD()
    {
        var content = RandomBytes(70_000, seed: 2);
        Hub.AddFile(Repo, SaeFile, content);
        using var client = new GemmaScopeHubClient(Options());
        var first = await client.DownloadAsync(Release, SaeId);

        var second = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(first, second);
        Assert.Equal(2, Hub.Count("HEAD", "/resolve/"));
        Assert.Equal(1, Hub.Count("GET", "/cdn/"));
    }

    [Fact]
    public async Task Progress_counts_up_to_the_announced_size()
    {
        var content = RandomBytes(3 * 1024 * 1024 + 17, seed: 3);
        Hub.AddFile(Repo, SaeFile, content);
        var reports = new List<DownloadProgress>();
        using var client = new GemmaScopeHubClient(Options());

        await client.DownloadAsync(Release, SaeId, new SyncProgress<DownloadProgress>(reports.Add));

        Assert.True(reports.Count >= 2, $"{reports.Count} reports");
        Assert.All(reports, r => Assert.Equal((Repo, SaeFile, (long?)content.Length), (r.RepoId, r.Path, r.TotalBytes)));
        Assert.Equal(content.Length, reports[^1].BytesDownloaded);
        for (var i = 1; i < reports.Count; i++)
        {
            Assert.True(reports[i].BytesDownloaded >= reports[i - 1].BytesDownloaded);
        }
    }

    [Fact]
    public async Task Gated_repository_answers_401_without_token_naming_HF_TOKEN()
    {
        Hub.AddFile(Repo, SaeFile, RandomBytes(1000, seed: 4));
        Hub.GatedRepos.Add(Repo);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));

        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
        Assert.Contains(Repo, e.Message, StringComparison.Ordinal);
        Assert.Empty(CachedFiles(Dir));
    }

    [Fact]
    public async Task Gated_repository_downloads_with_HF_TOKEN_sent_as_Bearer_to_the_hub_but_not_to_the_CDN()
    {
        var content = RandomBytes(5000, seed: 5);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.GatedRepos.Add(Repo);
        using var client = new GemmaScopeHubClient(Options(new() { ["HF_TOKEN"] = Hub.RequiredToken }));

        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        var seen = Hub.Requests;
        Assert.Equal("Bearer " + Hub.RequiredToken, seen.Single(r => r.Method == "HEAD").Authorization);
        Assert.Equal(string.Empty, seen.Single(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).Authorization);
    }

    [Fact]
    public async Task A_wrong_token_is_reported_as_refused()
    {
        Hub.AddFile(Repo, SaeFile, RandomBytes(1000, seed: 6));
        Hub.GatedRepos.Add(Repo);
        using var client = new GemmaScopeHubClient(Options() with { Token = "hf_wrong" });

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));

        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains("token was refused", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cut_connection_fails_the_first_call_and_the_retry_resumes_with_Range()
    {
        var content = RandomBytes(400_000, seed: 7);
        var file = Hub.AddFile(Repo, SaeFile, content);
        Hub.CutAfterBytes = 150_000;
        Hub.CutTimes = 1;
        using var client = new GemmaScopeHubClient(Options() with { DownloadRetries = 0 });

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));

        Assert.Contains(".incomplete", e.Message, StringComparison.Ordinal);
        var incomplete = Path.Combine(RepoFolder(Dir), "blobs", file.ETag + ".incomplete");
        Assert.Equal([Path.Combine("blobs", file.ETag + ".incomplete")], CachedFiles(Dir)); // nothing complete-looking
        var kept = new FileInfo(incomplete).Length;
        Assert.InRange(kept, 1, 150_000);

        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(["", $"bytes={kept}-"], Hub.Requests.Where(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).Select(r => r.Range));
        Assert.False(File.Exists(incomplete));
    }

    [Fact]
    public async Task With_retries_one_call_survives_a_cut_connection()
    {
        var content = RandomBytes(400_000, seed: 8);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.CutAfterBytes = 100_000;
        Hub.CutTimes = 2;
        using var client = new GemmaScopeHubClient(Options() with { DownloadRetries = 2 });

        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        var ranges = Hub.Requests.Where(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).Select(r => r.Range).ToList();
        Assert.Equal(3, ranges.Count);
        Assert.Equal(string.Empty, ranges[0]);
        Assert.StartsWith("bytes=", ranges[1], StringComparison.Ordinal);
        Assert.StartsWith("bytes=", ranges[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_corrupted_body_fails_the_sha256_check_and_leaves_nothing_in_blobs_or_snapshots()
    {
        var file = Hub.AddFile(Repo, SaeFile, RandomBytes(90_000, seed: 9));
        Hub.CorruptBodies = true;
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));

        Assert.Contains("SHA-256", e.Message, StringComparison.Ordinal);
        Assert.Contains(file.ETag, e.Message, StringComparison.Ordinal);
        Assert.Empty(CachedFiles(Dir));
    }

    [Fact]
    public async Task Turning_off_sha256_verification_accepts_the_bytes_as_sent()
    {
        var content = RandomBytes(90_000, seed: 10);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.CorruptBodies = true;
        using var client = new GemmaScopeHubClient(Options() with { VerifySha256 = false });

        var local = await client.DownloadAsync(Release, SaeId);

        var got = await File.ReadAllBytesAsync(local);
        Assert.Equal(content.Length, got.Length);
        Assert.NotEqual(content, got);
    }

    [Fact]
    public async Task A_404_names_the_missing_file_and_the_repository()
    {
        Hub.AddFile(Repo, SaeFile, RandomBytes(100, seed: 11));
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(
            () => client.DownloadFileAsync(Repo, "layer_20/width_16k/average_l0_71/params.safetensors"));

        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        Assert.Contains("'layer_20/width_16k/average_l0_71/params.safetensors'", e.Message, StringComparison.Ordinal);
        Assert.Contains(Repo, e.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_repository_and_an_unknown_revision_say_so()
    {
        Hub.AddFile(Repo, SaeFile, RandomBytes(100, seed: 12));
        using var client = new GemmaScopeHubClient(Options());
        using var onBranch = new GemmaScopeHubClient(Options() with { Revision = "no-such-branch" });

        var repo = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadFileAsync("google/gemma-scope-3b-pt-res", SaeFile));
        var rev = await Assert.ThrowsAsync<HuggingFaceHubException>(() => onBranch.DownloadAsync(Release, SaeId));

        Assert.Contains("Repository google/gemma-scope-3b-pt-res was not found", repo.Message, StringComparison.Ordinal);
        Assert.Contains("Revision 'no-such-branch' does not exist", rev.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_small_non_LFS_file_is_served_directly_with_a_git_etag()
    {
        var content = "{\"architecture\": \"jumprelu\"}"u8.ToArray();
        var file = Hub.AddFile(Repo, "README.md", content, lfs: false);
        using var client = new GemmaScopeHubClient(Options());

        var local = await client.DownloadFileAsync(Repo, "README.md");

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(40, file.ETag.Length);
        Assert.True(File.Exists(Path.Combine(RepoFolder(Dir), "blobs", file.ETag)));
        Assert.Equal(0, Hub.Count("GET", "/cdn/"));
    }

    [Fact]
    public async Task A_relative_redirect_of_a_renamed_repository_is_followed()
    {
        var content = RandomBytes(2000, seed: 13);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.RenamedRepos["google/old-name"] = Repo;
        using var client = new GemmaScopeHubClient(Options());

        var local = await client.DownloadFileAsync("google/old-name", SaeFile);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(2, Hub.Count("HEAD", "/resolve/"));
    }

    [Fact]
    public async Task Cancellation_stops_the_download_and_keeps_the_partial_file_for_later()
    {
        var content = RandomBytes(500_000, seed: 14);
        var file = Hub.AddFile(Repo, SaeFile, content);
        Hub.StallAfterBytes = 200_000;
        using var cts = new CancellationTokenSource();
        using var client = new GemmaScopeHubClient(Options());
        var download = client.DownloadAsync(Release, SaeId, cancellationToken: cts.Token);

        await Hub.Stalled.Task; // the server has sent 200 kB and now waits forever
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => download);
        Assert.Equal([Path.Combine("blobs", file.ETag + ".incomplete")], CachedFiles(Dir));
        Hub.StallAfterBytes = -1;
        var local = await client.DownloadAsync(Release, SaeId);
        Assert.Equal(content, await File.ReadAllBytesAsync(local));
    }

    [Fact]
    public async Task An_already_cancelled_token_sends_nothing()
    {
        Hub.AddFile(Repo, SaeFile, RandomBytes(100, seed: 15));
        using var client = new GemmaScopeHubClient(Options());

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.DownloadAsync(Release, SaeId, cancellationToken: new CancellationToken(true)));

        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task Paths_that_could_leave_the_cache_are_refused_before_any_request()
    {
        using var client = new GemmaScopeHubClient(Options());

        await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadFileAsync(Repo, "../../etc/passwd"));
        await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadFileAsync(Repo, "/abs/params.npz"));
        await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadFileAsync("google/../x", "a"));
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task Concurrent_downloads_of_one_file_fetch_it_once()
    {
        var content = RandomBytes(600_000, seed: 16);
        Hub.AddFile(Repo, SaeFile, content);
        using var client = new GemmaScopeHubClient(Options());

        var paths = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => client.DownloadAsync(Release, SaeId)));

        Assert.All(paths, p => Assert.Equal(paths[0], p));
        Assert.Equal(content, await File.ReadAllBytesAsync(paths[0]));
        Assert.Equal(1, Hub.Count("GET", "/cdn/"));
    }

    [Fact]
    public async Task The_static_one_liner_downloads_the_canonical_alias_target()
    {
        var content = RandomBytes(30_000, seed: 17);
        Hub.AddFile(Repo, SaeFile, content);

        var local = await GemmaScopeHub.DownloadAsync(Release + "-canonical", "layer_20/width_16k/canonical", Options());

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.EndsWith(Path.Combine("average_l0_71", "params.npz"), local, StringComparison.Ordinal);
    }
}
