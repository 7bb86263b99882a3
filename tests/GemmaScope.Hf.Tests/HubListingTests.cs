using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>Ids the compiled-in catalog lacks are looked up in the hub's tree listing, which is then cached.</summary>
public sealed class HubListingTests : HubTestBase
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Hub.TreePageSize = 2; // the real hub pages at 1000 entries; 2 makes the 6 folders below span 3 pages
        foreach (var n in new[] { 22, 38, 71, 139, 294, 999 })
        {
            Hub.AddFile(Repo, $"layer_20/width_16k/average_l0_{n}/params.npz", RandomBytes(64 + n, seed: n));
        }
    }

    [Fact]
    public async Task An_id_missing_from_the_catalog_is_found_in_the_paged_listing_and_downloads()
    {
        using var client = new GemmaScopeHubClient(Options());

        var sae = await client.ResolveAsync(Release, "layer_20/width_16k/average_l0_999");
        var local = await client.DownloadAsync(Release, "layer_20/width_16k/average_l0_999");

        Assert.False(sae.IsCompiledIn);
        Assert.Equal((999, 20, 16384, "blocks.20.hook_resid_post"), (sae.AverageL0, sae.Layer!.Value, sae.FeatureCount, sae.HookName));
        Assert.Equal("layer_20/width_16k/average_l0_999/params.npz", sae.FilePath);
        Assert.Equal(RandomBytes(64 + 999, seed: 999), await File.ReadAllBytesAsync(local));
        Assert.Equal(3, Hub.Count("GET", "/api/models/"));
    }

    [Fact]
    public async Task The_listing_is_cached_on_disk_and_read_offline()
    {
        using (var client = new GemmaScopeHubClient(Options()))
        {
            Assert.Equal(
                ["layer_20/width_16k/average_l0_22", "layer_20/width_16k/average_l0_38", "layer_20/width_16k/average_l0_71",
                 "layer_20/width_16k/average_l0_139", "layer_20/width_16k/average_l0_294", "layer_20/width_16k/average_l0_999"],
                await client.ListSaeIdsAsync(Release, "layer_20/width_16k"));
        }

        var before = Hub.Requests.Count;
        using var again = new GemmaScopeHubClient(Options());
        using var offline = new GemmaScopeHubClient(Options() with { Offline = true });

        Assert.Equal(6, (await again.ListSaeIdsAsync(Release, "layer_20/width_16k")).Count);
        Assert.False((await offline.ResolveAsync(Release, "layer_20/width_16k/average_l0_999")).IsCompiledIn);
        Assert.Equal(before, Hub.Requests.Count);

        await again.ListSaeIdsAsync(Release, "layer_20/width_16k", refresh: true);
        Assert.Equal(before + 3, Hub.Requests.Count);
    }

    [Fact]
    public async Task Compiled_in_ids_need_no_listing()
    {
        using var client = new GemmaScopeHubClient(Options());

        var sae = await client.ResolveAsync(Release, SaeId);
        var canonical = await client.ResolveAsync(Release + "-canonical", "layer_20/width_16k/canonical");

        Assert.True(sae.IsCompiledIn);
        Assert.Equal(SaeId, canonical.Folder);
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task An_unknown_id_of_the_right_shape_lists_the_closest_names_from_catalog_and_hub()
    {
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadAsync(Release, "layer_20/width_16k/average_l0_72"));

        Assert.Contains("'layer_20/width_16k/average_l0_72'", e.Message, StringComparison.Ordinal);
        Assert.Contains("layer_20/width_16k/average_l0_71", e.Message, StringComparison.Ordinal);
        Assert.Contains("does not have it either", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, Hub.Count("HEAD", "/resolve/"));
    }

    [Fact]
    public async Task A_folder_the_hub_lacks_is_an_unknown_id_not_a_raw_404()
    {
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.ResolveAsync(Release, "layer_20/width_32k/average_l0_70"));

        Assert.Contains("has no folder google/gemma-scope-2b-pt-res/layer_20/width_32k", e.Message, StringComparison.Ordinal);
        Assert.Contains("layer_12/width_32k/average_l0_76", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_id_of_the_wrong_shape_fails_at_once_with_close_names()
    {
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.ResolveAsync(Release, "layer20/width_16k/average_l0_71"));

        Assert.Contains("layer_20/width_16k/average_l0_71", e.Message, StringComparison.Ordinal);
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task Offline_without_a_cached_listing_says_so()
    {
        using var client = new GemmaScopeHubClient(Options() with { Offline = true });

        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.ResolveAsync(Release, "layer_20/width_16k/average_l0_999"));

        Assert.Contains("offline mode has no cached listing", e.Message, StringComparison.Ordinal);
        Assert.Empty(Hub.Requests);
    }
}
