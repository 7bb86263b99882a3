namespace GemmaScope.Hf.Tests;

/// <summary>
/// The catalog's Gemma Scope 2 releases and Gemma Scope's transcoders, against SAELens's pretrained_saes.yaml (counts and spot values
/// read from the yaml by hand or by a separate script) and the Gemma 3 configurations.
/// </summary>
public sealed class CatalogScope2Tests
{
    // Per release: SAE count and how many carry a Neuronpedia id, counted from the yaml with a separate script.
    [Theory]
    [InlineData("gemma-scope-2-12b-it-att", 36, 0)]
    [InlineData("gemma-scope-2-12b-it-att-all", 192, 0)]
    [InlineData("gemma-scope-2-12b-it-mlp", 36, 0)]
    [InlineData("gemma-scope-2-12b-it-mlp-all", 192, 0)]
    [InlineData("gemma-scope-2-12b-it-res", 52, 0)]
    [InlineData("gemma-scope-2-12b-it-res-all", 192, 0)]
    [InlineData("gemma-scope-2-12b-it-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-12b-it-transcoders-all", 384, 0)]
    [InlineData("gemma-scope-2-12b-pt-att", 36, 0)]
    [InlineData("gemma-scope-2-12b-pt-att-all", 192, 0)]
    [InlineData("gemma-scope-2-12b-pt-mlp", 36, 0)]
    [InlineData("gemma-scope-2-12b-pt-mlp-all", 192, 0)]
    [InlineData("gemma-scope-2-12b-pt-res", 52, 16)]
    [InlineData("gemma-scope-2-12b-pt-res-all", 192, 0)]
    [InlineData("gemma-scope-2-12b-pt-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-12b-pt-transcoders-all", 384, 0)]
    [InlineData("gemma-scope-2-1b-it-att", 36, 0)]
    [InlineData("gemma-scope-2-1b-it-att-all", 104, 0)]
    [InlineData("gemma-scope-2-1b-it-mlp", 48, 0)]
    [InlineData("gemma-scope-2-1b-it-mlp-all", 104, 0)]
    [InlineData("gemma-scope-2-1b-it-res", 52, 12)]
    [InlineData("gemma-scope-2-1b-it-res-all", 104, 0)]
    [InlineData("gemma-scope-2-1b-it-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-1b-it-transcoders-all", 208, 0)]
    [InlineData("gemma-scope-2-1b-pt-att", 36, 0)]
    [InlineData("gemma-scope-2-1b-pt-att-all", 104, 0)]
    [InlineData("gemma-scope-2-1b-pt-mlp", 48, 0)]
    [InlineData("gemma-scope-2-1b-pt-mlp-all", 104, 0)]
    [InlineData("gemma-scope-2-1b-pt-res", 52, 16)]
    [InlineData("gemma-scope-2-1b-pt-res-all", 104, 0)]
    [InlineData("gemma-scope-2-1b-pt-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-1b-pt-transcoders-all", 208, 0)]
    [InlineData("gemma-scope-2-270m-it-att", 36, 0)]
    [InlineData("gemma-scope-2-270m-it-att-all", 72, 0)]
    [InlineData("gemma-scope-2-270m-it-mlp", 36, 0)]
    [InlineData("gemma-scope-2-270m-it-mlp-all", 72, 0)]
    [InlineData("gemma-scope-2-270m-it-res", 52, 12)]
    [InlineData("gemma-scope-2-270m-it-res-all", 72, 0)]
    [InlineData("gemma-scope-2-270m-it-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-270m-it-transcoders-all", 144, 0)]
    [InlineData("gemma-scope-2-270m-pt-att", 36, 0)]
    [InlineData("gemma-scope-2-270m-pt-att-all", 72, 0)]
    [InlineData("gemma-scope-2-270m-pt-mlp", 36, 0)]
    [InlineData("gemma-scope-2-270m-pt-mlp-all", 72, 0)]
    [InlineData("gemma-scope-2-270m-pt-res", 52, 16)]
    [InlineData("gemma-scope-2-270m-pt-res-all", 72, 0)]
    [InlineData("gemma-scope-2-270m-pt-transcoders", 2, 0)]
    [InlineData("gemma-scope-2-270m-pt-transcoders-all", 144, 0)]
    [InlineData("gemma-scope-2-27b-it-att", 36, 0)]
    [InlineData("gemma-scope-2-27b-it-att-all", 248, 0)]
    [InlineData("gemma-scope-2-27b-it-mlp", 36, 0)]
    [InlineData("gemma-scope-2-27b-it-mlp-all", 248, 0)]
    [InlineData("gemma-scope-2-27b-it-res", 52, 16)]
    [InlineData("gemma-scope-2-27b-it-res-all", 248, 0)]
    [InlineData("gemma-scope-2-27b-it-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-27b-it-transcoders-all", 491, 62)]
    [InlineData("gemma-scope-2-27b-pt-res", 52, 0)]
    [InlineData("gemma-scope-2-27b-pt-res-all", 248, 0)]
    [InlineData("gemma-scope-2-27b-pt-transcoders-all", 491, 0)]
    [InlineData("gemma-scope-2-4b-it-att", 36, 0)]
    [InlineData("gemma-scope-2-4b-it-att-all", 136, 0)]
    [InlineData("gemma-scope-2-4b-it-mlp", 36, 0)]
    [InlineData("gemma-scope-2-4b-it-mlp-all", 136, 0)]
    [InlineData("gemma-scope-2-4b-it-res", 52, 12)]
    [InlineData("gemma-scope-2-4b-it-res-all", 136, 0)]
    [InlineData("gemma-scope-2-4b-it-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-4b-it-transcoders-all", 272, 0)]
    [InlineData("gemma-scope-2-4b-pt-att", 36, 0)]
    [InlineData("gemma-scope-2-4b-pt-att-all", 136, 0)]
    [InlineData("gemma-scope-2-4b-pt-mlp", 36, 0)]
    [InlineData("gemma-scope-2-4b-pt-mlp-all", 136, 0)]
    [InlineData("gemma-scope-2-4b-pt-res", 52, 16)]
    [InlineData("gemma-scope-2-4b-pt-res-all", 136, 0)]
    [InlineData("gemma-scope-2-4b-pt-transcoders", 72, 0)]
    [InlineData("gemma-scope-2-4b-pt-transcoders-all", 272, 0)]
    public void Scope2_release_sizes_match_SAELens(string name, int count, int withNeuronpedia)
    {
        var r = GemmaScopeCatalog.GetRelease(name);

        Assert.Equal(count, r.Saes.Count);
        Assert.Equal(count, r.SaeIds.Distinct().Count());
        Assert.Equal(withNeuronpedia, r.Saes.Count(s => s.NeuronpediaId is not null));
        Assert.Equal(2, r.ScopeVersion);
        Assert.False(r.IsCanonical);
    }

    [Fact]
    public void Scope2_has_75_releases_and_8784_ids()
    {
        var scope2 = GemmaScopeCatalog.Releases.Where(r => r.ScopeVersion == 2).ToList();

        Assert.Equal(75, scope2.Count);
        Assert.Equal(8784, scope2.Sum(r => r.Saes.Count));
        Assert.All(scope2, r => Assert.StartsWith("gemma-scope-2-", r.Name, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("gemma-scope-2-270m-pt-res-all", "layer_5_width_16k_l0_small", "google/gemma-scope-2-270m-pt", "resid_post_all/layer_5_width_16k_l0_small",
        "blocks.5.hook_resid_post", null, 640, 16384, 18, "google/gemma-3-270m")]
    [InlineData("gemma-scope-2-1b-it-transcoders", "transcoder/layer_7_width_16k_l0_big_affine", "google/gemma-scope-2-1b-it", "transcoder/layer_7_width_16k_l0_big_affine",
        "blocks.7.hook_mlp_in", "blocks.7.hook_mlp_out", 1152, 16384, 132, "google/gemma-3-1b-it")]
    [InlineData("gemma-scope-2-12b-it-att", "layer_12_width_16k_l0_medium", "google/gemma-scope-2-12b-it", "attn_out/layer_12_width_16k_l0_medium",
        "blocks.12.attn.hook_z", null, 4096, 16384, 52, "google/gemma-3-12b-it")]
    [InlineData("gemma-scope-2-4b-pt-res", "layer_17_width_262k_l0_medium_seed_1", "google/gemma-scope-2-4b-pt", "resid_post/layer_17_width_262k_l0_medium_seed_1",
        "blocks.17.hook_resid_post", null, 2560, 262144, 60, "google/gemma-3-4b-pt")]
    public void Scope2_ids_resolve_to_their_files_and_hooks(
        string release, string id, string repo, string folder, string hook, string? outputHook, int dIn, int dSae, int l0, string modelRepo)
    {
        var sae = GemmaScopeCatalog.GetSae(release, id);

        Assert.Equal(repo, sae.RepoId);
        Assert.Equal(folder, sae.Folder);
        Assert.Equal(folder + "/params.safetensors", sae.FilePath);
        Assert.Equal(folder + "/config.json", sae.ConfigPath);
        Assert.Equal(hook, sae.HookName);
        Assert.Equal(outputHook, sae.OutputHookName);
        Assert.Equal(outputHook is not null, sae.IsTranscoder);
        Assert.Equal(id.Contains("_affine", StringComparison.Ordinal), sae.IsAffine);
        Assert.Equal((dIn, dSae, l0), (sae.InputSize, sae.FeatureCount, sae.AverageL0));
        Assert.Equal(modelRepo, sae.Release.ModelRepoId);
        Assert.Equal(id, sae.ToString()[(release.Length + 1)..]);
    }

    [Fact]
    public void Scope2_Neuronpedia_ids_are_SAELens_s()
    {
        var sae = GemmaScopeCatalog.GetSae("gemma-scope-2-4b-pt-res", "layer_17_width_16k_l0_medium");

        Assert.Equal("gemma-3-4b/17-gemmascope-2-res-16k", sae.NeuronpediaId);
        Assert.Equal(new Uri("https://www.neuronpedia.org/gemma-3-4b/17-gemmascope-2-res-16k/42"), sae.NeuronpediaFeatureUrl(42));
        Assert.Null(GemmaScopeCatalog.GetSae("gemma-scope-2-4b-pt-res", "layer_17_width_16k_l0_small").NeuronpediaId);
    }

    [Fact]
    public void Scope2_entries_agree_with_Gemma_3_shapes_everywhere()
    {
        foreach (var r in GemmaScopeCatalog.Releases.Where(r => r.ScopeVersion == 2))
        {
            Assert.All(r.Saes, s =>
            {
                Assert.InRange(s.Layer!.Value, 0, r.LayerCount - 1);
                Assert.Equal(s.Folder + "/params.safetensors", s.FilePath);
                Assert.StartsWith(s.Site switch
                {
                    SaeSite.ResidualStream => "resid_post",
                    SaeSite.MlpOutput => "mlp_out",
                    SaeSite.AttentionOutput => "attn_out",
                    _ => "transcoder",
                }, s.Folder, StringComparison.Ordinal);
                Assert.Equal(s.Site == SaeSite.AttentionOutput ? r.InputSize : r.ModelDim, s.InputSize);
                Assert.Contains("_width_" + s.Width + "_", s.Id, StringComparison.Ordinal);
            });
        }
    }

    [Theory]
    [InlineData("gemma-scope-2-270m-pt-res", 18, 640, 1024)]
    [InlineData("gemma-scope-2-1b-pt-att", 26, 1152, 1024)]
    [InlineData("gemma-scope-2-4b-it-att", 34, 2560, 2048)]
    [InlineData("gemma-scope-2-12b-pt-att-all", 48, 3840, 4096)]
    [InlineData("gemma-scope-2-27b-it-att", 62, 5376, 4096)]
    public void Scope2_release_shapes_match_Gemma_3(string name, int layers, int dModel, int attIn)
    {
        var r = GemmaScopeCatalog.GetRelease(name);

        Assert.Equal((layers, dModel), (r.LayerCount, r.ModelDim));
        Assert.Equal(r.Site == SaeSite.AttentionOutput ? attIn : dModel, r.InputSize);
    }

    [Fact]
    public void Gemma_2_transcoders_read_ln2_normalized_and_write_mlp_out()
    {
        var r = GemmaScopeCatalog.GetRelease("gemma-scope-2b-pt-transcoders");
        var sae = r.GetSae("layer_0/width_16k/average_l0_76");

        Assert.Equal(26, r.Saes.Count);
        Assert.Equal(Enumerable.Range(0, 26), r.Layers);
        Assert.Equal(("google/gemma-scope-2b-pt-transcoders", SaeSite.Transcoder, 1), (r.RepoId, r.Site, r.ScopeVersion));
        Assert.Equal("layer_0/width_16k/average_l0_76/params.npz", sae.FilePath);
        Assert.Null(sae.ConfigPath);
        Assert.Equal("blocks.0.ln2.hook_normalized", sae.HookName);
        Assert.Equal("blocks.0.hook_mlp_out", sae.OutputHookName);
        Assert.Equal((2304, 16384), (sae.InputSize, sae.FeatureCount));
        Assert.Equal("gemma-2-2b/0-gemmascope-transcoder-16k", sae.NeuronpediaId);
        Assert.Equal("gemma-2-2b/25-gemmascope-transcoder-16k", r.GetSae("layer_25/width_16k/average_l0_41").NeuronpediaId);
        Assert.False(GemmaScopeCatalog.TryGetRelease("gemma-scope-2b-pt-transcoders-canonical", out _));
        Assert.Null(GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71").OutputHookName);
    }

    [Fact]
    public void Unknown_scope2_id_suggests_close_names()
    {
        var e = Assert.Throws<ArgumentException>(() => GemmaScopeCatalog.GetSae("gemma-scope-2-270m-pt-res-all", "layer_5_width_16k_l0_smal"));

        Assert.Contains("layer_5_width_16k_l0_small", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transcoders_are_refused_by_LoadAsync_before_any_download()
    {
        var dir = Directory.CreateTempSubdirectory("gs-affine-").FullName;
        try
        {
            // An endpoint nothing listens on: a request would fail with HuggingFaceHubException, not ArgumentException.
            // As an SAE a transcoder would reconstruct its input site and drop x·W_skip; LoadTranscoderAsync loads it.
            using var client = new GemmaScopeHubClient(new GemmaScopeHubOptions { Endpoint = "http://127.0.0.1:9", CacheDirectory = dir });
            var e = await Assert.ThrowsAsync<ArgumentException>(() =>
                client.LoadAsync("gemma-scope-2-1b-it-transcoders", "transcoder/layer_7_width_16k_l0_big_affine"));
            Assert.Contains("LoadTranscoderAsync", e.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<ArgumentException>(() => client.LoadAsync("gemma-scope-2b-pt-transcoders", "layer_3/width_16k/average_l0_54"));
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
