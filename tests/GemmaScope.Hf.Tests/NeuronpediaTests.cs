using System.Net;

namespace GemmaScope.Hf.Tests;

/// <summary>The Neuronpedia client against a fake Neuronpedia (API and export bucket) on 127.0.0.1, one per test.</summary>
public sealed class NeuronpediaTests() : FakeServerTest<FakeNeuronpedia>(FakeNeuronpedia.StartAsync)
{
    private const string Id = "gemma-2-2b/20-gemmascope-res-16k";
    private const string Model = "gemma-2-2b";
    private const string Source = "20-gemmascope-res-16k";
    private const string Prefix = "v1/gemma-2-2b/20-gemmascope-res-16k/explanations/";

    private FakeNeuronpedia Np => Server;

    [Fact]
    public async Task Export_is_downloaded_batch_by_batch_cached_and_read_offline()
    {
        ServeTwoBatches();
        using (var client = Client())
        {
            var export = await client.GetExportAsync(Id);
            Assert.Equal(2, export.BatchCount);
            Assert.Equal(4, export.Explanations.Count);
            Assert.Equal("references to Paris", export.Descriptions[0]);
            Assert.Equal("cats and other pets", export.Descriptions[7]); // first of two explanations of 7
            Assert.Equal("the word 'mat'", export.Descriptions[16383]);
            Assert.Equal(3, export.Descriptions.Count);
            var second = export.Explanations.Where(e => e.Index == 7).ToList();
            Assert.Equal(["cats and other pets", "felines"], second.Select(e => e.Description));
            Assert.Equal("claude-3", second[1].ExplanationModelName);
            Assert.Equal(1, Np.Count("batch-2.jsonl.gz")); // asked for the next batch once, got 403: the end
        }

        var before = Np.Requests.Count;
        using var offline = Client(offline: true);
        var again = await offline.GetExportAsync(Id);
        Assert.Equal(3, again.Descriptions.Count);
        var d = await offline.GetDescriptionsAsync(Id, [7, 8, 0]);
        Assert.Equal(new Dictionary<int, string> { [7] = "cats and other pets", [0] = "references to Paris" }, d);
        Assert.Equal(["felines"], (await offline.GetFeatureAsync(Id, 7)).Skip(1).Select(e => e.Description));
        Assert.Equal(before, Np.Requests.Count);
    }

    [Fact]
    public async Task Single_feature_comes_from_the_api_and_is_cached()
    {
        Np.Features[$"{Model}/{Source}/42"] =
            """{"modelId":"gemma-2-2b","layer":"20-gemmascope-res-16k","index":"42","explanations":[{"description":"dates in the 1990s","typeName":"oai_token-act-pair","explanationModelName":"gpt-4o-mini","id":"x"}],"activations":[]}""";
        using (var client = Client())
        {
            var e = Assert.Single(await client.GetFeatureAsync(Id, 42));
            Assert.Equal(new FeatureExplanation(Model, Source, 42, "dates in the 1990s", "oai_token-act-pair", "gpt-4o-mini"), e);
            var missing = await Assert.ThrowsAsync<NeuronpediaException>(() => client.GetFeatureAsync(Id, 43));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Contains("/api/feature/gemma-2-2b/20-gemmascope-res-16k/43", missing.Message, StringComparison.Ordinal);
            var d = await client.GetDescriptionsAsync(Id, [42, 43, 42]);
            Assert.Equal(new Dictionary<int, string> { [42] = "dates in the 1990s" }, d);
        }

        Assert.Equal(1, Np.Count("/42"));
        using var offline = Client(offline: true);
        Assert.Equal("dates in the 1990s", Assert.Single(await offline.GetFeatureAsync(Id, 42)).Description);
        var ex = await Assert.ThrowsAsync<NeuronpediaException>(() => offline.GetFeatureAsync(Id, 44));
        Assert.Contains("Offline", ex.Message, StringComparison.Ordinal);
        Assert.Contains("44.json", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"modelId\":\"gemma-2-2b\",\"layer\":\"20-gemmascope-res-16k\",\"index\":\"5\"}", "field 'description' is missing")]
    [InlineData("{\"modelId\":\"gemma-2-2b\",\"layer\":\"20-gemmascope-res-16k\",\"index\":\"five\",\"description\":\"d\"}", "field 'index' must be a non-negative integer, found \"five\"")]
    [InlineData("{\"modelId\":\"gemma-2-2b\",\"layer\":\"20-gemmascope-res-16k\",\"index\":-1,\"description\":\"d\"}", "field 'index' must be a non-negative integer, found -1")]
    [InlineData("{\"modelId\":\"gemma-2-2b\",\"layer\":\"20-gemmascope-res-16k\",\"index\":\"5\",\"description\":7}", "field 'description' must be a string, found Number")]
    [InlineData("{\"modelId\":\"gemma-2-9b\",\"layer\":\"20-gemmascope-res-16k\",\"index\":\"5\",\"description\":\"d\"}", "the record is of gemma-2-9b/20-gemmascope-res-16k, expected gemma-2-2b/20-gemmascope-res-16k")]
    [InlineData("{\"modelId\":\"gemma-2-2b\",\"layer\":\"20-gemmascope-res-16k\",\"index\":\"5\",\"description\":\"d\",\"typeName\":[1]}", "field 'typeName' must be a string or null")]
    [InlineData("{not json", "not a JSON record")]
    [InlineData("[1,2]", "expected a JSON object, found Array")]
    public async Task Malformed_record_is_an_error_naming_file_line_and_field_and_nothing_is_cached(string bad, string expected)
    {
        Np.Files[Prefix + "batch-0.jsonl.gz"] = FakeNeuronpedia.Gzip(
            FakeNeuronpedia.Record(Model, Source, "0", "ok"), string.Empty, bad);
        using (var client = Client())
        {
            var ex = await Assert.ThrowsAsync<NeuronpediaException>(() => client.GetExportAsync(Id));
            Assert.Contains("batch-0.jsonl.gz, line 3: " + expected, ex.Message, StringComparison.Ordinal);
        }

        using var offline = Client(offline: true);
        var miss = await Assert.ThrowsAsync<NeuronpediaException>(() => offline.GetExportAsync(Id));
        Assert.Contains("no export of gemma-2-2b/20-gemmascope-res-16k in the cache", miss.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_api_answer_is_an_error_and_is_not_cached()
    {
        Np.Features[$"{Model}/{Source}/1"] = """{"index":"1","explanations":[{"typeName":"x"}]}""";
        Np.Features[$"{Model}/{Source}/2"] = """{"index":"3","explanations":[]}""";
        using var client = Client();
        var ex = await Assert.ThrowsAsync<NeuronpediaException>(() => client.GetFeatureAsync(Id, 1));
        Assert.Contains("explanations[0]: field 'description' is missing", ex.Message, StringComparison.Ordinal);
        ex = await Assert.ThrowsAsync<NeuronpediaException>(() => client.GetFeatureAsync(Id, 2));
        Assert.Contains("the answer is of feature \"3\", expected 2", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Dir.Path, "*.json", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Broken_download_leaves_nothing_that_looks_complete()
    {
        ServeTwoBatches();
        Np.CutAfterBytes = 20;
        using (var client = Client())
        {
            var ex = await Assert.ThrowsAsync<NeuronpediaException>(() => client.GetExportAsync(Id));
            Assert.Contains("batch-0.jsonl.gz", ex.Message, StringComparison.Ordinal);
        }

        Assert.Empty(Directory.EnumerateFiles(Dir.Path, "batch-*", SearchOption.AllDirectories));
        Np.CutAfterBytes = -1;
        using var again = Client();
        Assert.Equal(3, (await again.GetExportAsync(Id)).Descriptions.Count);
    }

    [Fact]
    public async Task User_export_folder_is_read_offline_and_a_gap_in_batches_is_an_error()
    {
        var folder = Path.Combine(Dir.Path, "exports", "v1", Model, Source, "explanations");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "batch-0.jsonl.gz"), FakeNeuronpedia.Gzip(FakeNeuronpedia.Record(Model, Source, 3, "three")));
        var options = new NeuronpediaOptions
        {
            Offline = true,
            ExportDirectory = Path.Combine(Dir.Path, "exports"),
            CacheDirectory = Path.Combine(Dir.Path, "np"),
            EnvironmentReader = _ => null,
        };
        using (var client = new NeuronpediaClient(options))
        {
            Assert.Equal("three", Assert.Single(await client.GetFeatureAsync(Id, 3)).Description);
            Assert.Empty(await client.GetFeatureAsync(Id, 4));
        }

        File.WriteAllBytes(Path.Combine(folder, "batch-2.jsonl.gz"), FakeNeuronpedia.Gzip(FakeNeuronpedia.Record(Model, Source, 3, "x")));
        using var gap = new NeuronpediaClient(options);
        var ex = await Assert.ThrowsAsync<NeuronpediaException>(() => gap.GetExportAsync(Id));
        Assert.Contains("has batch-2.jsonl.gz but no batch-1.jsonl.gz", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Np.Requests);
    }

    [Fact]
    public void Environment_sets_endpoints_cache_next_to_the_hub_cache_and_offline()
    {
        var env = new Dictionary<string, string>
        {
            ["NEURONPEDIA_ENDPOINT"] = "http://127.0.0.1:9/np/",
            ["NEURONPEDIA_EXPORTS_ENDPOINT"] = "http://127.0.0.1:9/bucket",
            ["HF_HOME"] = "/tmp/hfhome",
            ["HF_HUB_OFFLINE"] = "1",
        };
        using var client = new NeuronpediaClient(new NeuronpediaOptions { EnvironmentReader = env.GetValueOrDefault });
        Assert.Equal("http://127.0.0.1:9/np/", client.ApiEndpoint.ToString());
        Assert.Equal("http://127.0.0.1:9/bucket/", client.ExportsEndpoint.ToString());
        Assert.Equal("/tmp/hfhome/neuronpedia", client.CacheDirectory);
        Assert.True(client.IsOffline);
        Assert.Throws<ArgumentException>(() => new NeuronpediaClient(new NeuronpediaOptions { ApiEndpoint = "ftp://x", EnvironmentReader = _ => null }));
        Assert.Throws<ArgumentException>(() => client.GetFeatureAsync("gemma-2-2b/../../etc", 1).GetAwaiter().GetResult());
    }

    private void ServeTwoBatches()
    {
        Np.Files[Prefix + "batch-0.jsonl.gz"] = FakeNeuronpedia.Gzip(
            FakeNeuronpedia.Record(Model, Source, "0", "references to Paris"),
            FakeNeuronpedia.Record(Model, Source, "7", "cats and other pets"));
        Np.Files[Prefix + "batch-1.jsonl.gz"] = FakeNeuronpedia.Gzip(
            FakeNeuronpedia.Record(Model, Source, 7, "felines", explainer: "claude-3"),
            FakeNeuronpedia.Record(Model, Source, "16383", "the word 'mat'"));
    }

    private NeuronpediaClient Client(bool offline = false) => new(new NeuronpediaOptions
    {
        ApiEndpoint = Np.Endpoint,
        ExportsEndpoint = Np.Endpoint,
        CacheDirectory = Path.Combine(Dir.Path, "np"),
        Offline = offline,
        EnvironmentReader = _ => null,
    });
}
