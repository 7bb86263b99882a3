using GemmaScope.Hf;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>GemmaModel.FromPretrainedAsync on the tiny Gemma 3 (text-only and image-text) served by the fake hub (127.0.0.1).</summary>
public sealed class Gemma3HubTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly TempDir _tmp = new();
    private FakeHub _hub = null!;

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        foreach (var (repo, layout) in new[] { ("google/gemma-3-tiny", "text"), ("google/gemma-3-tiny-mm", "multimodal") })
        {
            foreach (var file in Directory.EnumerateFiles(TinyModels.Gemma3Checkpoint(layout)))
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
        _tmp.Dispose();
    }

    [Theory]
    [InlineData("google/gemma-3-tiny")]
    [InlineData("google/gemma-3-tiny-mm")]
    public async Task AGemma3CheckpointFromTheHubEqualsTheLocalFolder(string repo)
    {
        using var hub = new GemmaScopeHubClient(new GemmaScopeHubOptions { Endpoint = _hub.Endpoint, CacheDirectory = _tmp.Cache, Token = "hf_test_token", Revision = "main" });
        using var remote = await GemmaModel.FromPretrainedAsync(repo, hub: hub).WaitAsync(Bound);
        using var local = GemmaModel.FromPretrained(TinyModels.Gemma3Checkpoint("text"));
        TestData.AssertSameOutputs(local, remote, TinyModels.Gemma3Probe(), [.. TestData.AllSites(7, withLn2: true)]);
        Assert.NotNull(remote.Tokenizer);
    }
}
