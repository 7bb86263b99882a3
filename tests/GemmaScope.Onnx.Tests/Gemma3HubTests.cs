using GemmaScope.Hf;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>GemmaModel.FromPretrainedAsync on the tiny Gemma 3 (text-only and image-text) served by the fake hub (127.0.0.1).</summary>
public sealed class Gemma3HubTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "gemmascope-gemma3-hub-tests", Guid.NewGuid().ToString("N"));
    private FakeHub _hub = null!;

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        foreach (var (repo, layout) in new[] { ("google/gemma-3-tiny", "text"), ("google/gemma-3-tiny-mm", "multimodal") })
        {
            foreach (var file in Directory.EnumerateFiles(Gemma3Tests.Dir(layout)))
            {
                var name = Path.GetFileName(file);
                _hub.AddFile(repo, name, await File.ReadAllBytesAsync(file), lfs: name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".model", StringComparison.Ordinal));
            }

            _hub.GatedRepos.Add(repo);
        }
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        if (Directory.Exists(_cache))
        {
            Directory.Delete(_cache, recursive: true);
        }
    }

    [Theory]
    [InlineData("google/gemma-3-tiny")]
    [InlineData("google/gemma-3-tiny-mm")]
    public async Task AGemma3CheckpointFromTheHubEqualsTheLocalFolder(string repo)
    {
        using var hub = new GemmaScopeHubClient(new GemmaScopeHubOptions { Endpoint = _hub.Endpoint, CacheDirectory = _cache, Token = "hf_test_token", Revision = "main" });
        using var remote = await GemmaModel.FromPretrainedAsync(repo, hub: hub).WaitAsync(Bound);
        using var local = GemmaModel.FromPretrained(Gemma3Tests.Dir("text"));
        var ids = Gemma3Tests.Probe();
        var sites = TestData.AllSites(7, withLn2: true).ToArray();
        var a = remote.Run(ids, capture: sites);
        var b = local.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            Assert.Equal(b.Activations(site).ToArray(), a.Activations(site).ToArray());
        }

        Assert.Equal(b.Logits().ToArray(), a.Logits().ToArray());
        Assert.NotNull(remote.Tokenizer);
    }
}
