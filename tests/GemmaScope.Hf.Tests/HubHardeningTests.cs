using System.Net;
using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>Issue 13, downloads: stalls time out and resume, stale listings refresh, clean URLs, hub error codes.</summary>
public sealed class HubHardeningTests : HubTestBase
{
    // One download through the CDN path first, so that the timings below do not include the server's first-request JIT
    // (on a busy machine that alone can outlast a sub-second stall timeout, and the retry would then start from byte 0).
    private async Task WarmUpAsync()
    {
        Hub.AddFile("google/warm-up", "w.bin", RandomBytes(10, seed: 0));
        using var client = new GemmaScopeHubClient(Options());
        await client.DownloadFileAsync("google/warm-up", "w.bin").WaitAsync(Bound);
    }

    private List<string> CdnRanges() =>
        Hub.Requests.Where(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).Skip(1).Select(r => r.Range).ToList(); // after the warm-up

    [Fact]
    public async Task A_transfer_that_stalls_after_1000_bytes_times_out_and_resumes_with_Range()
    {
        await WarmUpAsync();
        var content = RandomBytes(300_000, seed: 31);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.StallAfterBytes = 1000;
        Hub.StallTimes = 1;
        using var client = new GemmaScopeHubClient(Options() with { DownloadTimeout = TimeSpan.FromSeconds(1) });

        var local = await client.DownloadAsync(Release, SaeId).WaitAsync(Bound);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(["", "bytes=1000-"], CdnRanges());
    }

    [Fact]
    public async Task HF_HUB_DOWNLOAD_TIMEOUT_sets_the_stall_timeout_in_seconds()
    {
        await WarmUpAsync();
        var content = RandomBytes(50_000, seed: 32);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.StallAfterBytes = 0; // headers, then nothing
        Hub.StallTimes = 1;
        using var client = new GemmaScopeHubClient(Options(new() { ["HF_HUB_DOWNLOAD_TIMEOUT"] = "0.8" }));

        var local = await client.DownloadAsync(Release, SaeId).WaitAsync(Bound);

        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(2, CdnRanges().Count);
    }

    [Fact]
    public async Task A_server_that_always_stalls_fails_after_the_retries_naming_the_timeout_and_keeps_the_partial_file()
    {
        await WarmUpAsync();
        var file = Hub.AddFile(Repo, SaeFile, RandomBytes(100_000, seed: 33));
        Hub.StallAfterBytes = 1000; // every attempt: 1000 more bytes, then silence
        using var client = new GemmaScopeHubClient(Options() with { DownloadTimeout = TimeSpan.FromSeconds(0.5), DownloadRetries = 2 });

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadAsync(Release, SaeId).WaitAsync(Bound));

        Assert.Contains("no bytes for 0.5 s", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT", e.Message, StringComparison.Ordinal);
        Assert.Equal(["", "bytes=1000-", "bytes=2000-"], CdnRanges());
        Assert.Equal([Path.Combine("blobs", file.ETag + ".incomplete")], CachedFiles(Dir));
        Assert.Equal(3000, new FileInfo(Path.Combine(RepoFolder(Dir), "blobs", file.ETag + ".incomplete")).Length);
    }

    [Fact]
    public void The_stall_timeout_defaults_to_10_s_like_huggingface_hub_and_refuses_nonsense()
    {
        AssertTimeoutSetting("HF_HUB_DOWNLOAD_TIMEOUT", s => s.DownloadTimeout, (o, t) => o with { DownloadTimeout = t });
    }

    [Fact]
    public async Task An_id_the_hub_gained_after_the_listing_was_cached_is_found_by_refreshing_on_the_miss()
    {
        foreach (var n in new[] { 22, 71 })
        {
            Hub.AddFile(Repo, $"layer_20/width_16k/average_l0_{n}/params.npz", RandomBytes(64, seed: n));
        }

        using var client = new GemmaScopeHubClient(Options());
        Assert.Equal(2, (await client.ListSaeIdsAsync(Release, "layer_20/width_16k")).Count); // cached now
        var content = RandomBytes(640, seed: 999);
        Hub.AddFile(Repo, "layer_20/width_16k/average_l0_999/params.npz", content);

        var sae = await client.ResolveAsync(Release, "layer_20/width_16k/average_l0_999");
        var local = await client.DownloadAsync(Release, "layer_20/width_16k/average_l0_999");

        Assert.Equal(999, sae.AverageL0);
        Assert.Equal(content, await File.ReadAllBytesAsync(local));
        Assert.Equal(3, (await client.ListSaeIdsAsync(Release, "layer_20/width_16k")).Count); // the cache was updated
        Assert.Equal(2, Hub.Count("GET", "/api/models/")); // the first listing and one refresh, not one per call
    }

    [Fact]
    public async Task An_id_missing_from_a_fresh_listing_is_still_unknown_after_one_refresh()
    {
        Hub.AddFile(Repo, "layer_20/width_16k/average_l0_22/params.npz", RandomBytes(64, seed: 22));
        using var client = new GemmaScopeHubClient(Options());
        await client.ListSaeIdsAsync(Release, "layer_20/width_16k");

        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.ResolveAsync(Release, "layer_20/width_16k/average_l0_998"));

        Assert.Contains("does not have it either", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, Hub.Count("GET", "/api/models/"));
    }

    [Fact]
    public async Task A_cached_listing_older_than_a_day_is_fetched_again_and_a_fresh_one_is_not()
    {
        Hub.AddFile(Repo, "layer_20/width_16k/average_l0_22/params.npz", RandomBytes(64, seed: 22));
        using var client = new GemmaScopeHubClient(Options());
        await client.ListSaeIdsAsync(Release, "layer_20/width_16k");
        Hub.AddFile(Repo, "layer_20/width_16k/average_l0_999/params.npz", RandomBytes(64, seed: 999));

        Assert.Single(await client.ListSaeIdsAsync(Release, "layer_20/width_16k")); // fresh: from the cache
        var listing = Directory.EnumerateFiles(Path.Combine(RepoFolder(Dir), ".gemmascope"), "*.json", SearchOption.AllDirectories).Single();
        File.SetLastWriteTimeUtc(listing, DateTime.UtcNow - TimeSpan.FromDays(2));
        var aged = await client.ListSaeIdsAsync(Release, "layer_20/width_16k");

        Assert.Equal(["layer_20/width_16k/average_l0_22", "layer_20/width_16k/average_l0_999"], aged);
        Assert.Equal(2, Hub.Count("GET", "/api/models/"));
    }

    [Fact]
    public async Task An_old_listing_is_used_when_the_hub_cannot_be_reached()
    {
        Hub.AddFile(Repo, "layer_20/width_16k/average_l0_22/params.npz", RandomBytes(64, seed: 22));
        using (var client = new GemmaScopeHubClient(Options()))
        {
            await client.ListSaeIdsAsync(Release, "layer_20/width_16k");
        }

        var listing = Directory.EnumerateFiles(Path.Combine(RepoFolder(Dir), ".gemmascope"), "*.json", SearchOption.AllDirectories).Single();
        File.SetLastWriteTimeUtc(listing, DateTime.UtcNow - TimeSpan.FromDays(2));
        using var unreachable = new GemmaScopeHubClient(Options() with { Endpoint = "http://127.0.0.1:1" });

        Assert.Single(await unreachable.ListSaeIdsAsync(Release, "layer_20/width_16k").WaitAsync(Bound));
    }

    [Fact]
    public async Task An_endpoint_ending_with_a_slash_never_produces_a_double_slash()
    {
        var content = RandomBytes(2000, seed: 34);
        Hub.AddFile(Repo, SaeFile, content);
        Hub.AddFile(Repo, "layer_20/width_16k/average_l0_999/params.npz", RandomBytes(64, seed: 999));
        Hub.AddFile("google/gated", "config.json", "{}"u8.ToArray());
        Hub.GatedRepos.Add("google/gated");
        using var client = new GemmaScopeHubClient(Options() with { Endpoint = Hub.Endpoint + "/" });

        await client.DownloadAsync(Release, SaeId);
        await client.ListSaeIdsAsync(Release, "layer_20/width_16k");
        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadFileAsync("google/gated", "config.json"));

        Assert.All(Hub.Requests, r => Assert.DoesNotContain("//", r.Path, StringComparison.Ordinal));
        Assert.Contains($"{Hub.Endpoint}/google/gated", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("//google", e.Message, StringComparison.Ordinal);
        Assert.Equal(Hub.Endpoint + "/", client.Endpoint.ToString());
    }

    [Fact]
    public async Task A_401_with_RepoNotFound_says_the_repository_was_not_found_not_that_it_is_gated()
    {
        Hub.UnknownRepoStatus = 401; // what huggingface.co answers for an unknown repo without a token
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadFileAsync("google/gemma-2-3b", "config.json"));

        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains("Repository google/gemma-2-3b was not found", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("gated", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("licence", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_401_with_GatedRepo_says_to_accept_the_licence_on_the_model_page_and_set_HF_TOKEN()
    {
        Hub.AddFile("google/gemma-2-2b", "config.json", "{}"u8.ToArray(), lfs: false);
        Hub.GatedRepos.Add("google/gemma-2-2b");
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadFileAsync("google/gemma-2-2b", "config.json"));

        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains("gated", e.Message, StringComparison.Ordinal);
        Assert.Contains($"accept its licence at {Hub.Endpoint}/google/gemma-2-2b", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
    }
}
