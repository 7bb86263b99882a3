using System.Net;
using System.Text;
using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>Whole checkpoints (config, tokenizer, safetensors index and shards) through the fake hub (issue 11).</summary>
public sealed class HubModelDownloadTests : HubTestBase
{
    private const string Model = "google/gemma-2-2b";

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Publishes a checkpoint like google/gemma-2-2b's: small files in git, the shards in LFS; returns file -> bytes.</summary>
    private Dictionary<string, byte[]> Publish(int shards, bool withTokenizer = true, string? indexText = null, string[]? skip = null)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["config.json"] = Utf8("{\"model_type\": \"gemma2\", \"num_hidden_layers\": 2}"),
        };
        if (withTokenizer)
        {
            files["tokenizer.json"] = Utf8("{\"model\": {\"type\": \"BPE\"}}");
            files["tokenizer_config.json"] = Utf8("{\"add_bos_token\": true}");
        }

        if (shards == 0)
        {
            files["model.safetensors"] = RandomBytes(120_000, seed: 40);
        }
        else
        {
            var names = Enumerable.Range(1, shards).Select(i => $"model-{i:00000}-of-{shards:00000}.safetensors").ToArray();
            var map = string.Join(", ", Enumerable.Range(0, 2 * shards).Select(t => $"\"model.layers.{t}.mlp.up_proj.weight\": \"{names[t / 2]}\""));
            files["model.safetensors.index.json"] = Utf8(indexText ?? $"{{\"metadata\": {{\"total_size\": 1}}, \"weight_map\": {{{map}}}}}");
            for (var i = 0; i < shards; i++)
            {
                files[names[i]] = RandomBytes(100_000 + (1000 * i), seed: 41 + i);
            }
        }

        foreach (var (path, bytes) in files)
        {
            if (skip?.Contains(path) != true)
            {
                Hub.AddFile(Model, path, bytes, lfs: path.EndsWith(".safetensors", StringComparison.Ordinal));
            }
        }

        return files;
    }

    private static void AssertSnapshot(string folder, Dictionary<string, byte[]> files)
    {
        foreach (var (path, bytes) in files)
        {
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(folder, path)));
        }
    }

    [Fact]
    public async Task A_sharded_checkpoint_downloads_every_shard_the_index_names_into_one_snapshot_with_aggregate_progress()
    {
        var files = Publish(shards: 3);
        var reports = new List<ModelDownloadProgress>();
        using var client = new GemmaScopeHubClient(Options());

        var folder = await client.DownloadModelAsync(Model, progress: new SyncProgress<ModelDownloadProgress>(reports.Add)).WaitAsync(Bound);

        Assert.Equal(Path.Combine(RepoFolder(Dir, Model), "snapshots", FakeHub.CommitOf(Model)), folder);
        AssertSnapshot(folder, files);
        Assert.False(File.Exists(Path.Combine(folder, "generation_config.json")));
        Assert.True(File.Exists(Path.Combine(RepoFolder(Dir, Model), ".no_exist", FakeHub.CommitOf(Model), "generation_config.json")));
        long total = files.Values.Sum(b => (long)b.Length);
        Assert.All(reports, r => Assert.Equal((Model, (long?)total, files.Count), (r.RepoId, r.TotalBytes, r.FileCount)));
        Assert.Equal((total, files.Count), (reports[^1].BytesDownloaded, reports[^1].FilesDone));
        for (var i = 1; i < reports.Count; i++)
        {
            Assert.True(reports[i].BytesDownloaded >= reports[i - 1].BytesDownloaded, $"report {i} went back");
        }

        Assert.Contains(reports, r => r.File == "model-00002-of-00003.safetensors");
        // Every file after config.json was asked for at the commit config.json resolved to, never at 'main' again.
        Assert.Equal(1, Hub.Count("HEAD", "/resolve/main/"));
        // The other files, and the 404s of generation_config.json and tokenizer.model.
        Assert.Equal(files.Count + 1, Hub.Count("HEAD", "/resolve/" + FakeHub.CommitOf(Model) + "/"));
        Assert.Equal(3, Hub.Count("GET", "/cdn/"));
    }

    [Fact]
    public async Task A_single_file_checkpoint_without_an_index_downloads_model_safetensors()
    {
        var files = Publish(shards: 0, withTokenizer: false);
        using var client = new GemmaScopeHubClient(Options());

        var folder = await client.DownloadModelAsync(Model).WaitAsync(Bound);

        AssertSnapshot(folder, files);
        Assert.False(File.Exists(Path.Combine(folder, "tokenizer.json")));
    }

    [Fact]
    public async Task A_gated_checkpoint_without_a_token_says_to_accept_the_licence_on_the_model_page_and_set_HF_TOKEN()
    {
        Publish(shards: 2);
        Hub.GatedRepos.Add(Model);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadModelAsync(Model).WaitAsync(Bound));

        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains($"accept its licence at {Hub.Endpoint}/{Model}", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
        Assert.Empty(CachedFiles(Dir, Model));
    }

    [Fact]
    public async Task A_gated_checkpoint_downloads_with_HF_TOKEN_sent_only_to_the_hub()
    {
        var files = Publish(shards: 2);
        Hub.GatedRepos.Add(Model);
        using var client = new GemmaScopeHubClient(Options(new() { ["HF_TOKEN"] = Hub.RequiredToken }));

        var folder = await client.DownloadModelAsync(Model).WaitAsync(Bound);

        AssertSnapshot(folder, files);
        Assert.All(Hub.Requests.Where(r => r.Host == "127.0.0.1"), r => Assert.Equal("Bearer " + Hub.RequiredToken, r.Authorization));
        Assert.All(Hub.Requests.Where(r => r.Host == "localhost"), r => Assert.Equal(string.Empty, r.Authorization));
    }

    [Fact]
    public async Task A_cut_shard_fails_the_first_call_and_the_next_call_resumes_it_with_Range()
    {
        var files = Publish(shards: 3);
        Hub.CutAfterBytes = 40_000; // the first LFS download, shard 1, is cut
        Hub.CutTimes = 1;
        using var client = new GemmaScopeHubClient(Options() with { DownloadRetries = 0 });

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadModelAsync(Model).WaitAsync(Bound));
        Assert.Contains(".incomplete", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(CachedFiles(Dir, Model), f => f.Contains("model-00001", StringComparison.Ordinal));
        var folder = await client.DownloadModelAsync(Model).WaitAsync(Bound);

        AssertSnapshot(folder, files);
        var ranges = Hub.Requests.Where(r => r.Host == "localhost").Select(r => r.Range).ToList();
        Assert.Equal(4, ranges.Count); // shard 1 cut, shard 1 resumed, shards 2 and 3
        Assert.Equal(string.Empty, ranges[0]);
        Assert.StartsWith("bytes=", ranges[1], StringComparison.Ordinal);
        Assert.NotEqual("bytes=0-", ranges[1]);
    }

    [Fact]
    public async Task A_stalled_shard_times_out_and_resumes_within_one_call()
    {
        var files = Publish(shards: 2);
        Hub.StallAfterBytes = 1000;
        Hub.StallTimes = 1;
        using var client = new GemmaScopeHubClient(Options() with { DownloadTimeout = TimeSpan.FromSeconds(1) });

        var folder = await client.DownloadModelAsync(Model).WaitAsync(Bound);

        AssertSnapshot(folder, files);
        Assert.Contains("bytes=1000-", Hub.Requests.Select(r => r.Range));
    }

    [Fact]
    public async Task Offline_the_cached_snapshot_is_returned_with_zero_requests_and_online_a_second_call_sends_one_HEAD()
    {
        var files = Publish(shards: 3);
        string first;
        using (var client = new GemmaScopeHubClient(Options()))
        {
            first = await client.DownloadModelAsync(Model).WaitAsync(Bound);
        }

        var before = Hub.Requests.Count;
        using var offline = new GemmaScopeHubClient(Options(new() { ["HF_HUB_OFFLINE"] = "1" }));
        Assert.Equal(first, await offline.DownloadModelAsync(Model));
        Assert.Equal(before, Hub.Requests.Count);

        using var online = new GemmaScopeHubClient(Options());
        Assert.Equal(first, await online.DownloadModelAsync(Model).WaitAsync(Bound));
        Assert.Equal(before + 1, Hub.Requests.Count); // HEAD config.json at main; the rest is cached at its commit (404s too)
        Assert.Equal(first, await online.DownloadModelAsync(Model, revision: FakeHub.CommitOf(Model)));
        Assert.Equal(before + 1, Hub.Requests.Count); // a commit needs no request at all
        AssertSnapshot(first, files);
    }

    [Fact]
    public async Task Offline_with_shards_missing_lists_every_missing_file()
    {
        Publish(shards: 3);
        using (var client = new GemmaScopeHubClient(Options()))
        {
            var folder = await client.DownloadModelAsync(Model).WaitAsync(Bound);
            File.Delete(Path.Combine(folder, "model-00001-of-00003.safetensors"));
            File.Delete(Path.Combine(folder, "model-00003-of-00003.safetensors"));
        }

        using var offline = new GemmaScopeHubClient(Options() with { Offline = true });
        var before = Hub.Requests.Count;

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => offline.DownloadModelAsync(Model));

        Assert.Contains("Offline mode", e.Message, StringComparison.Ordinal);
        Assert.Contains("lacks model-00001-of-00003.safetensors, model-00003-of-00003.safetensors.", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, Hub.Requests.Count);
    }

    [Fact]
    public async Task Offline_with_nothing_cached_names_the_missing_ref()
    {
        using var offline = new GemmaScopeHubClient(Options() with { Offline = true });

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => offline.DownloadModelAsync(Model));

        Assert.Contains($"{Model} at revision 'main' is not in the cache", e.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine("refs", "main"), e.Message, StringComparison.Ordinal);
        Assert.Empty(Hub.Requests);
    }

    [Fact]
    public async Task A_shard_named_by_the_index_but_missing_on_the_hub_is_named_in_the_error()
    {
        Publish(shards: 3, skip: ["model-00002-of-00003.safetensors"]);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadModelAsync(Model).WaitAsync(Bound));

        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        Assert.Contains("model.safetensors.index.json of google/gemma-2-2b names the shard 'model-00002-of-00003.safetensors'", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, Hub.Count("GET", "/cdn/")); // found out before any shard was downloaded
        Assert.DoesNotContain(CachedFiles(Dir, Model), f => f.EndsWith(".safetensors", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_repository_without_config_json_is_not_a_model()
    {
        Hub.AddFile(Model, "README.md", Utf8("hi"), lfs: false);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadModelAsync(Model).WaitAsync(Bound));

        Assert.Contains("'config.json'", e.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_repository_with_neither_index_nor_model_safetensors_says_so()
    {
        Publish(shards: 0, skip: ["model.safetensors"]);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadModelAsync(Model).WaitAsync(Bound));

        Assert.Contains("has neither model.safetensors.index.json nor model.safetensors", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not json", "is not valid JSON")]
    [InlineData("{\"metadata\": {}}", "has no \\\"weight_map\\\" object")]
    [InlineData("{\"weight_map\": {}}", "has an empty weight_map")]
    [InlineData("{\"weight_map\": {\"a\": 3}}", "weight_map[\\\"a\\\"] is a JSON Number")]
    [InlineData("{\"weight_map\": {\"a\": \"../../etc/passwd.safetensors\"}}", "is not a safe relative path")]
    [InlineData("{\"weight_map\": {\"a\": \"model.bin\"}}", "is not a .safetensors file")]
    public async Task A_malformed_index_gives_a_clear_error_naming_the_file(string index, string expected)
    {
        Publish(shards: 1, indexText: index);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.DownloadModelAsync(Model).WaitAsync(Bound));

        Assert.Contains("model.safetensors.index.json of google/gemma-2-2b", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected.Replace("\\\"", "\"", StringComparison.Ordinal), e.Message, StringComparison.Ordinal);
        Assert.Equal(0, Hub.Count("GET", "/cdn/"));
    }

    [Fact]
    public async Task The_static_one_liner_downloads_a_checkpoint()
    {
        var files = Publish(shards: 2);

        var folder = await GemmaScopeHub.DownloadModelAsync(Model, Options()).WaitAsync(Bound);

        AssertSnapshot(folder, files);
    }
}
