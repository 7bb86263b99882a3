using System.Net;
using GemmaScope.Hf;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>GemmaModel.FromPretrainedAsync end to end: the tiny sharded checkpoint served by the fake hub (127.0.0.1), gated.</summary>
public sealed class HubPretrainedTests : IAsyncLifetime
{
    private const string Repo = "google/gemma-2-tiny";
    private const double Tol = 2e-5;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private readonly TempDir _tmp = new();
    private FakeHub _hub = null!;
    private long _bytes;

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        foreach (var file in Directory.EnumerateFiles(TinyModels.Gemma2Checkpoint("sharded")))
        {
            var name = Path.GetFileName(file);
            var bytes = await File.ReadAllBytesAsync(file);
            _bytes += bytes.Length;
            _hub.AddFile(Repo, name, bytes, lfs: name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".model", StringComparison.Ordinal));
        }

        _hub.GatedRepos.Add(Repo);
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _tmp.Dispose();
    }

    // Everything explicit, so that HF_* variables of the machine running the tests cannot leak in.
    private GemmaScopeHubClient Client(string? token = "hf_test_token", bool offline = false) =>
        new(new GemmaScopeHubOptions { Endpoint = _hub.Endpoint, CacheDirectory = _tmp.Cache, Token = token, Offline = offline, Revision = "main" });

    [Fact]
    public async Task A_gated_sharded_checkpoint_from_the_hub_runs_every_hook_equal_to_the_float64_reference()
    {
        using var hub = Client();
        var reports = new List<ModelDownloadProgress>();
        var ids = TokenIds.Random(11, seed: 7);
        var expected = TinyModels.Gemma2Reference.Forward(ids);

        using var model = await GemmaModel.FromPretrainedAsync(Repo, hub: hub, progress: new SyncProgress<ModelDownloadProgress>(reports.Add)).WaitAsync(Bound);

        Assert.Equal(Path.Combine(_tmp.Cache, "models--google--gemma-2-tiny", "snapshots", FakeHub.CommitOf(Repo)), model.ModelPath);
        TestData.AssertRunMatches(model, ids, expected, [.. TestData.AllSites(model.LayerCount, withLn2: true)], Tol, "hub");
        Assert.NotNull(model.Tokenizer); // tokenizer.model came down too
        Assert.Equal((_bytes, (long?)_bytes), (reports[^1].BytesDownloaded, reports[^1].TotalBytes));
        Assert.Equal(4, _hub.Count("GET", "/cdn/")); // 3 shards + tokenizer.model
    }

    [Fact]
    public async Task Without_a_token_the_error_says_to_accept_the_licence_and_set_HF_TOKEN()
    {
        using var hub = Client(token: null);

        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => GemmaModel.FromPretrainedAsync(Repo, hub: hub).WaitAsync(Bound));

        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains($"accept its licence at {_hub.Endpoint}/{Repo}", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unsupported_model_type_is_refused_from_config_json_before_any_weight_is_downloaded()
    {
        const string Llama = "meta-llama/tiny";
        _hub.AddFile(Llama, "config.json", "{\"model_type\": \"llama\"}"u8.ToArray(), lfs: false);
        _hub.AddFile(Llama, "model.safetensors", new byte[200_000]);
        using var hub = Client();

        var e = await Assert.ThrowsAsync<GemmaScope.Formats.CheckpointFormatException>(() => GemmaModel.FromPretrainedAsync(Llama, hub: hub).WaitAsync(Bound));

        Assert.Contains("model_type", e.Message, StringComparison.Ordinal);
        Assert.Contains("llama", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, _hub.Count("GET", "/cdn/"));
    }

    [Fact]
    public async Task Offline_the_cached_checkpoint_loads_with_zero_requests()
    {
        using (var online = Client())
        using (await GemmaModel.FromPretrainedAsync(Repo, hub: online).WaitAsync(Bound))
        {
        }

        var before = _hub.Requests.Count;
        using var offline = Client(token: null, offline: true);
        var ids = TokenIds.Random(5, seed: 3);

        using var model = await GemmaModel.FromPretrainedAsync(Repo, hub: offline);

        Approx.Close(model.Run(ids).Logits(), TinyModels.Gemma2Reference.Forward(ids).Logits, Tol, "offline logits");
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public async Task An_existing_folder_is_loaded_as_it_is_and_a_missing_path_is_not_sent_to_the_hub()
    {
        using var hub = Client();

        using var local = await GemmaModel.FromPretrainedAsync(TinyModels.Gemma2Checkpoint("single"), hub: hub);
        var missing = await Assert.ThrowsAsync<DirectoryNotFoundException>(
            () => GemmaModel.FromPretrainedAsync(Path.Combine(_tmp.Cache, "no", "such", "folder"), hub: hub));

        Assert.Equal(TinyModels.Gemma2Reference.Layers, local.LayerCount);
        Assert.Contains("not an existing folder", missing.Message, StringComparison.Ordinal);
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public void A_folder_of_symlinks_into_another_folder_as_huggingface_hub_writes_its_cache_loads()
    {
        // snapshots/<commit>/model-00001-of-00003.safetensors -> ../../blobs/<name>: what Python's huggingface_hub leaves
        // behind. ONNX Runtime refuses external data whose real path leaves the folder it is given.
        var snapshot = TestData.SymlinkedSnapshot(TinyModels.Gemma2Checkpoint("sharded"), _tmp.Cache, "0123");

        var ids = TokenIds.Random(7, seed: 5);
        using var model = GemmaModel.FromPretrained(snapshot);

        Approx.Close(model.Run(ids).Logits(), TinyModels.Gemma2Reference.Forward(ids).Logits, Tol, "symlinked logits");
    }
}
