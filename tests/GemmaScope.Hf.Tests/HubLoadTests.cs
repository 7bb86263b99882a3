using GemmaScope.Formats;
using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>Loading through the hub gives exactly what <see cref="JumpReLUSae.Load"/> gives on the file itself.</summary>
public sealed class HubLoadTests : HubTestBase
{
    private const int DIn = 24; // not a multiple of the vector width
    private const int DSae = 4096; // the smallest Gemma Scope width, 4k

    /// <summary>A release shaped like Gemma Scope but with d_model 24, so that a real 4k-wide SAE is under 1 MB.</summary>
    private static GemmaScopeSae TinySae(bool embedding = false)
    {
        var release = new GemmaScopeRelease("gemma-scope-tiny-pt-res", "google/gemma-scope-tiny-pt-res", "gemma-2-2b", SaeSite.ResidualStream, 26, DIn, DIn, isCanonical: false);
        var id = embedding ? "embedding/width_4k/average_l0_9" : "layer_3/width_4k/average_l0_9";
        return new GemmaScopeSae(release, id, id, embedding ? null : 3, "4k", 9, "gemma-2-2b/3-gemmascope-res-4k", isCompiledIn: true);
    }

    /// <summary>Publishes random weights at <paramref name="path"/> on the hub and writes the same npz to a file of its own, to load directly.</summary>
    /// <returns>That file and the decoder written.</returns>
    private (string Direct, float[] WDec) Publish(string repoId, string path, int seed)
    {
        var weights = RandomWeights(DIn, DSae, seed, npzNames: true);
        var npz = TestNpz.Npz(weights);
        Hub.AddFile(repoId, path, npz);
        var direct = Dir.File($"direct-{seed}.npz");
        File.WriteAllBytes(direct, npz);
        return (direct, weights[1].Data);
    }

    private static float[] Encode(JumpReLUSae sae, float[] x)
    {
        var f = new float[x.Length / sae.InputSize * sae.FeatureCount];
        Array.Fill(f, float.NaN);
        sae.Encode(x, f);
        return f;
    }

    [Fact]
    public async Task Loading_through_the_hub_is_bit_identical_to_loading_the_file()
    {
        var sae = TinySae();
        var (direct, wDec) = Publish(sae.RepoId, sae.FilePath, seed: 30);
        using var client = new GemmaScopeHubClient(Options());

        using var viaHub = await client.LoadAsync(sae);
        using var fromFile = JumpReLUSae.Load(direct);

        Assert.Equal((DIn, DSae), (viaHub.InputSize, viaHub.FeatureCount));
        for (var i = 0; i < DSae; i++)
        {
            Assert.Equal(wDec.AsSpan(i * DIn, DIn).ToArray(), viaHub.GetDecoderDirection(i));
            Assert.Equal(fromFile.GetDecoderDirection(i), viaHub.GetDecoderDirection(i));
        }

        var rng = new Random(31);
        var x = Enumerable.Range(0, 5 * DIn).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var fHub = Encode(viaHub, x);
        Assert.Equal(Encode(fromFile, x), fHub);
        Assert.Contains(fHub, v => v > 0);
        var features = Enumerable.Range(0, 3 * DSae).Select(_ => rng.NextDouble() < 0.01 ? (float)rng.NextDouble() : 0f).ToArray();
        Assert.Equal(fromFile.Decode(features), viaHub.Decode(features));
        Assert.Equal(("blocks.3.hook_resid_post", 3, "gemma-2-2b", "gemma-2-2b/3-gemmascope-res-4k"),
            (viaHub.Config.HookName, viaHub.Config.HookLayer, viaHub.Config.ModelName, viaHub.Config.NeuronpediaId));
    }

    [Fact]
    public async Task Embedding_SAEs_are_scaled_by_the_square_root_of_d_in_like_SAELens()
    {
        var sae = TinySae(embedding: true);
        var (direct, wDec) = Publish(sae.RepoId, sae.FilePath, seed: 32);
        using var client = new GemmaScopeHubClient(Options());

        using var viaHub = await client.LoadAsync(sae);
        using var scaled = JumpReLUSae.Load(direct, new SaeLoadOptions { InputScale = MathF.Sqrt(DIn) });

        Assert.Equal("hook_embed", viaHub.Config.HookName);
        Assert.Equal(scaled.GetDecoderDirection(7), viaHub.GetDecoderDirection(7));
        Assert.NotEqual(wDec.AsSpan(7 * DIn, DIn).ToArray(), viaHub.GetDecoderDirection(7));
    }

    [Fact]
    public async Task A_file_whose_sizes_are_not_the_catalogs_is_refused_naming_both()
    {
        Publish(Repo, SaeFile, seed: 33);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<SaeFormatException>(() => client.LoadAsync(Release, SaeId));

        Assert.Contains("[2304, 16384]", e.Message, StringComparison.Ordinal);
        Assert.Contains($"[{DIn}, {DSae}]", e.Message, StringComparison.Ordinal);
        Assert.Contains("params.npz", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_static_one_liner_loads_offline_from_a_cache_filled_by_an_earlier_download()
    {
        var sae = TinySae();
        var (_, wDec) = Publish(sae.RepoId, sae.FilePath, seed: 34);
        using (var client = new GemmaScopeHubClient(Options()))
        {
            await client.DownloadAsync(sae);
        }

        var before = Hub.Requests.Count;
        using var offline = new GemmaScopeHubClient(Options() with { Offline = true });
        using var loaded = await offline.LoadAsync(sae, new SaeLoadOptions { Validation = SaeValidation.StructureOnly });

        Assert.Equal(wDec.AsSpan(5 * DIn, DIn).ToArray(), loaded.GetDecoderDirection(5));
        Assert.Equal(before, Hub.Requests.Count);
    }
}
