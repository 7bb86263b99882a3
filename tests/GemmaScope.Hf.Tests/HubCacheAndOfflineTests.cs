using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>A cache laid out by Python's huggingface_hub is used as is; offline mode never touches the network.</summary>
public sealed class HubCacheAndOfflineTests : HubTestBase
{
    private const string OtherCommit = "89abcdef0123456789abcdef0123456789abcdef";

    /// <summary>Writes what `hf_hub_download` leaves behind: blob, relative symlink in the snapshot, refs/main.</summary>
    private string PrefillLikePython(byte[] content, string commit, string etag, string path = SaeFile)
    {
        var repo = RepoFolder(Dir);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        File.WriteAllBytes(Path.Combine(repo, "blobs", etag), content);
        var snapshot = Path.Combine(repo, "snapshots", commit, path.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(snapshot)!);
        File.CreateSymbolicLink(snapshot, Path.GetRelativePath(Path.GetDirectoryName(snapshot)!, Path.Combine(repo, "blobs", etag)));
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), commit);
        return snapshot;
    }

    [Fact]
    public async Task Offline_mode_uses_a_prefilled_cache_with_zero_requests()
    {
        var content = RandomBytes(10_000, seed: 20);
        var snapshot = PrefillLikePython(content, OtherCommit, new string('e', 64));
        using var client = new GemmaScopeHubClient(Options() with { Offline = true });

        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(snapshot, local);
        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task HF_HUB_OFFLINE_in_the_environment_turns_offline_mode_on()
    {
        var content = RandomBytes(1000, seed: 21);
        PrefillLikePython(content, OtherCommit, new string('d', 64));
        using var client = new GemmaScopeHubClient(Options(new() { ["HF_HUB_OFFLINE"] = "1" }));

        Assert.True(client.IsOffline);
        Assert.Equal(content, await File.ReadAllBytesAsync(await client.DownloadAsync(Release, SaeId)));
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task Offline_mode_without_the_file_names_what_is_missing()
    {
        using var client = new GemmaScopeHubClient(Options() with { Offline = true });

        var noRef = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));
        PrefillLikePython(RandomBytes(10, seed: 22), OtherCommit, new string('c', 64), path: "layer_0/width_16k/average_l0_105/params.npz");
        var noSnapshot = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));

        Assert.Contains("Offline mode", noRef.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(RepoFolder(Dir), "refs", "main"), noRef.Message, StringComparison.Ordinal);
        Assert.Contains($"'{SaeFile}'", noRef.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(RepoFolder(Dir), "snapshots", OtherCommit, "layer_20"), noSnapshot.Message, StringComparison.Ordinal);
        Assert.Contains(OtherCommit, noSnapshot.Message, StringComparison.Ordinal);
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task Online_with_a_commit_revision_a_cached_file_needs_no_request()
    {
        var content = RandomBytes(4000, seed: 23);
        PrefillLikePython(content, OtherCommit, new string('b', 64));
        using var client = new GemmaScopeHubClient(Options() with { Revision = OtherCommit });

        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task Online_on_main_a_blob_already_cached_is_linked_without_downloading()
    {
        var content = RandomBytes(4000, seed: 24);
        var file = Hub.AddFile(Repo, SaeFile, content);
        var commit = FakeHub.CommitOf(Repo);
        var repo = RepoFolder(Dir);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        File.WriteAllBytes(Path.Combine(repo, "blobs", file.ETag), content); // e.g. the same blob from an older snapshot
        using var client = new GemmaScopeHubClient(Options());

        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Equal(Path.Combine(repo, "snapshots", commit, "layer_20", "width_16k", "average_l0_71", "params.npz"), local);
        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(0, Hub.Count("GET", "/cdn/"));
        Assert.Equal(1, Hub.Count("HEAD", "/resolve/"));
    }

    [Fact]
    public async Task When_the_hub_cannot_be_reached_a_cached_revision_is_used_and_otherwise_the_error_says_so()
    {
        var content = RandomBytes(300, seed: 25);
        var options = Options() with { Endpoint = LoopbackServer.RefusingEndpoint() };
        using var client = new GemmaScopeHubClient(options);

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId));
        PrefillLikePython(content, OtherCommit, new string('a', 64));
        var local = await client.DownloadAsync(Release, SaeId);

        Assert.Contains("Cannot reach the hub", e.Message, StringComparison.Ordinal);
        Assert.Equal(content, await File.ReadAllBytesAsync(local));
    }

    [Fact]
    public async Task Files_downloaded_here_are_found_by_a_later_offline_client()
    {
        var content = RandomBytes(20_000, seed: 26);
        Hub.AddFile(Repo, SaeFile, content);
        using (var online = new GemmaScopeHubClient(Options()))
        {
            await online.DownloadAsync(Release, SaeId);
        }

        var before = Hub.Requests.Count;
        using var offline = new GemmaScopeHubClient(Options() with { Offline = true });

        Assert.Equal(content, await File.ReadAllBytesAsync(await offline.DownloadAsync(Release, SaeId)));
        Assert.Equal(before, Hub.Requests.Count);
    }
}
