using GemmaScope.Formats;
using static GemmaScope.Hf.Tests.TestSupport;

namespace GemmaScope.Hf.Tests;

/// <summary>Loading through the hub gives exactly what <see cref="JumpReLUSae.Load"/> gives on the file itself.</summary>
public sealed class HubLoadTests : IAsyncLifetime
{
    private const int DIn = 24; // not a multiple of the vector width
    private const int DSae = 4096; // the smallest Gemma Scope width, 4k
    private readonly TempDir _dir = new();
    private FakeHub _hub = null!;

    public async Task InitializeAsync() => _hub = await FakeHub.StartAsync();

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>A release shaped like Gemma Scope but with d_model 24, so that a real 4k-wide SAE is under 1 MB.</summary>
    private static GemmaScopeSae TinySae(bool embedding = false)
    {
        var release = new GemmaScopeRelease("gemma-scope-tiny-pt-res", "google/gemma-scope-tiny-pt-res", "gemma-2-2b", SaeSite.ResidualStream, 26, DIn, DIn, isCanonical: false);
        var id = embedding ? "embedding/width_4k/average_l0_9" : "layer_3/width_4k/average_l0_9";
        return new GemmaScopeSae(release, id, id, embedding ? null : 3, "4k", 9, "gemma-2-2b/3-gemmascope-res-4k", isCompiledIn: true);
    }

    /// <summary>Random weights (never zeros), positive thresholds, written as numpy would.</summary>
    private static (byte[] Npz, float[] WDec) TinyNpz(TempDir dir, int seed)
    {
        var rng = new Random(seed);
        float[] Fill(int n, float scale, float offset = 0) => Enumerable.Range(0, n).Select(_ => offset + (scale * ((float)rng.NextDouble() - 0.5f))).ToArray();
        var wDec = Fill(DSae * DIn, 0.4f);
        var path = Path.Combine(dir.Path, $"tiny-{seed}.npz");
        TestNpz.Write(
            path,
            ("W_enc", [DIn, DSae], Fill(DIn * DSae, 0.4f)),
            ("W_dec", [DSae, DIn], wDec),
            ("b_enc", [DSae], Fill(DSae, 0.2f)),
            ("b_dec", [DIn], Fill(DIn, 0.2f)),
            ("threshold", [DSae], Fill(DSae, 0.05f, offset: 0.06f)));
        return (File.ReadAllBytes(path), wDec);
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
        var (npz, wDec) = TinyNpz(_dir, seed: 30);
        _hub.AddFile(sae.RepoId, sae.FilePath, npz);
        var direct = Path.Combine(_dir.Path, "direct.npz");
        await File.WriteAllBytesAsync(direct, npz);
        using var client = new GemmaScopeHubClient(Options(_hub, _dir));

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
        var (npz, wDec) = TinyNpz(_dir, seed: 32);
        _hub.AddFile(sae.RepoId, sae.FilePath, npz);
        var direct = Path.Combine(_dir.Path, "direct.npz");
        await File.WriteAllBytesAsync(direct, npz);
        using var client = new GemmaScopeHubClient(Options(_hub, _dir));

        using var viaHub = await client.LoadAsync(sae);
        using var scaled = JumpReLUSae.Load(direct, new SaeLoadOptions { InputScale = MathF.Sqrt(DIn) });

        Assert.Equal("hook_embed", viaHub.Config.HookName);
        Assert.Equal(scaled.GetDecoderDirection(7), viaHub.GetDecoderDirection(7));
        Assert.NotEqual(wDec.AsSpan(7 * DIn, DIn).ToArray(), viaHub.GetDecoderDirection(7));
    }

    [Fact]
    public async Task A_file_whose_sizes_are_not_the_catalogs_is_refused_naming_both()
    {
        var (npz, _) = TinyNpz(_dir, seed: 33);
        _hub.AddFile(Repo, SaeFile, npz);
        using var client = new GemmaScopeHubClient(Options(_hub, _dir));

        var e = await Assert.ThrowsAsync<SaeFormatException>(() => client.LoadAsync(Release, SaeId));

        Assert.Contains("[2304, 16384]", e.Message, StringComparison.Ordinal);
        Assert.Contains($"[{DIn}, {DSae}]", e.Message, StringComparison.Ordinal);
        Assert.Contains("params.npz", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_static_one_liner_loads_offline_from_a_cache_filled_by_an_earlier_download()
    {
        var sae = TinySae();
        var (npz, wDec) = TinyNpz(_dir, seed: 34);
        _hub.AddFile(sae.RepoId, sae.FilePath, npz);
        using (var client = new GemmaScopeHubClient(Options(_hub, _dir)))
        {
            await client.DownloadAsync(sae);
        }

        var before = _hub.Requests.Count;
        using var offline = new GemmaScopeHubClient(Options(_hub, _dir) with { Offline = true });
        using var loaded = await offline.LoadAsync(sae, new SaeLoadOptions { Validation = SaeValidation.StructureOnly });

        Assert.Equal(wDec.AsSpan(5 * DIn, DIn).ToArray(), loaded.GetDecoderDirection(5));
        Assert.Equal(before, _hub.Requests.Count);
    }
}
