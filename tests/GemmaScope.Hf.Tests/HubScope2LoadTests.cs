using System.Text;
using GemmaScope.Formats;
using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>Gemma Scope 2 SAEs (params.safetensors + config.json) and transcoders of both scopes through the hub.</summary>
public sealed class HubScope2LoadTests : HubTestBase
{
    private const int DIn = 21; // not a multiple of the vector width
    private const int DSae = 4096; // width "4k"

    private static GemmaScopeSae Entry(SaeSite site, string folder, int scope, int layer = 3)
    {
        var release = new GemmaScopeRelease(scope == 2 ? "gemma-scope-2-tiny-pt" : "gemma-scope-tiny-pt-transcoders", "google/gemma-scope-2-tiny-pt",
            scope == 2 ? "gemma-3-tiny" : "gemma-2-tiny", site, 6, DIn, DIn, isCanonical: false, scopeVersion: scope);
        return new GemmaScopeSae(release, folder, folder, layer, "4k", 9, null, isCompiledIn: true);
    }

    /// <summary>A safetensors file as Gemma Scope 2 writes it (lower-case keys, float32), or with <paramref name="npzNames"/> an npz as Gemma Scope 1 does.</summary>
    private static byte[] Weights(int seed, int dOut, bool skip, bool npzNames = false) =>
        npzNames
            ? TestNpz.Npz(RandomWeights(DIn, DSae, seed, dOut, skip, npzNames: true))
            : TestSafeTensors.F32(RandomWeights(DIn, DSae, seed, dOut, skip));

    private static byte[] Config(string type, bool affine, string hin, string hout) => Encoding.UTF8.GetBytes(GemmaScope2Files.Config(type, DSae, l0: 9, affine, hin, hout));

    private static float[] Input(int tokens, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, tokens * DIn).Select(_ => (float)((rng.NextDouble() * 4) - 2))];
    }

    private string Direct(string name, byte[] weights, byte[]? config)
    {
        var folder = Path.Combine(Dir.Path, name);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, config is null ? "params.npz" : "params.safetensors"), weights);
        if (config is not null)
        {
            File.WriteAllBytes(Path.Combine(folder, "config.json"), config);
        }

        return folder;
    }

    [Fact]
    public async Task Scope2_SAE_downloads_its_config_and_loads_like_the_file()
    {
        var sae = Entry(SaeSite.ResidualStream, "resid_post/layer_3_width_4k_l0_small", 2);
        var weights = Weights(40, DIn, skip: false);
        var config = Config("sae", false, "model.layers.3.output", "model.layers.3.output");
        Hub.AddFile(sae.RepoId, sae.FilePath, weights);
        Hub.AddFile(sae.RepoId, sae.ConfigPath!, config, lfs: false);
        using var client = new GemmaScopeHubClient(Options());

        using var viaHub = await client.LoadAsync(sae);
        using var direct = JumpReLUSae.Load(Direct("sae", weights, config));

        Assert.Equal("blocks.3.hook_resid_post", viaHub.Config.HookName);
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(viaHub.SourcePath)!, "config.json")));
        var x = Input(5, 41);
        var f = viaHub.Encode(x);
        Assert.Equal(direct.Encode(x), f);
        Assert.Contains(f, v => v > 0);
        Assert.Equal(direct.GetDecoderDirection(11), viaHub.GetDecoderDirection(11));
    }

    [Fact]
    public async Task Scope2_affine_transcoder_loads_by_LoadTranscoderAsync_and_not_by_LoadAsync()
    {
        var sae = Entry(SaeSite.Transcoder, "transcoder/layer_3_width_4k_l0_small_affine", 2);
        Assert.True(sae.IsAffine);
        var weights = Weights(42, DIn, skip: true);
        var config = Config("transcoder", true, "model.layers.3.pre_feedforward_layernorm.output", "model.layers.3.post_feedforward_layernorm.output");
        Hub.AddFile(sae.RepoId, sae.FilePath, weights);
        Hub.AddFile(sae.RepoId, sae.ConfigPath!, config, lfs: false);
        using var client = new GemmaScopeHubClient(Options());

        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.LoadAsync(sae));
        Assert.Contains("LoadTranscoderAsync", e.Message, StringComparison.Ordinal);

        using var viaHub = await client.LoadTranscoderAsync(sae);
        using var direct = JumpReLUTranscoder.Load(Direct("tc", weights, config));
        Assert.True(viaHub.HasSkipConnection);
        Assert.Equal(("blocks.3.hook_mlp_in", "blocks.3.hook_mlp_out"), (viaHub.InputHookName, viaHub.OutputHookName));
        var x = Input(4, 43);
        Assert.Equal(direct.Reconstruct(x), viaHub.Reconstruct(x));
    }

    [Fact]
    public async Task Scope1_npz_transcoder_gets_its_sites_from_the_catalog()
    {
        var sae = Entry(SaeSite.Transcoder, "layer_3/width_4k/average_l0_9", 1);
        var weights = Weights(44, DIn, skip: false, npzNames: true);
        Hub.AddFile(sae.RepoId, sae.FilePath, weights);
        using var client = new GemmaScopeHubClient(Options());

        using var tc = await client.LoadTranscoderAsync(sae);
        Assert.Equal(("blocks.3.ln2.hook_normalized", "blocks.3.hook_mlp_out"), (tc.InputHookName, tc.OutputHookName));
        using var direct = JumpReLUTranscoder.Load(Direct("npz", weights, null));
        var x = Input(3, 45);
        Assert.Equal(direct.Reconstruct(x), tc.Reconstruct(x));
    }

    [Fact]
    public async Task Sizes_and_sites_are_checked_against_the_catalog()
    {
        using var client = new GemmaScopeHubClient(Options());

        // d_out 22 where the catalog's model has 21.
        var wide = Entry(SaeSite.Transcoder, "transcoder/layer_3_width_4k_l0_big", 2);
        Hub.AddFile(wide.RepoId, wide.FilePath, Weights(46, DIn + 1, skip: false));
        Hub.AddFile(wide.RepoId, wide.ConfigPath!, Config("transcoder", false, "model.layers.3.pre_feedforward_layernorm.output", "model.layers.3.post_feedforward_layernorm.output"), lfs: false);
        var e = await Assert.ThrowsAsync<SaeFormatException>(() => client.LoadTranscoderAsync(wide));
        Assert.Contains("→ 21", e.Expected, StringComparison.Ordinal);
        Assert.Contains("→ 22", e.Actual, StringComparison.Ordinal);

        // config.json names layer 4 where the catalog says layer 3.
        var other = Entry(SaeSite.MlpOutput, "mlp_out/layer_3_width_4k_l0_big", 2);
        Hub.AddFile(other.RepoId, other.FilePath, Weights(47, DIn, skip: false));
        Hub.AddFile(other.RepoId, other.ConfigPath!, Config("sae", false, "model.layers.4.post_feedforward_layernorm.output", "model.layers.4.post_feedforward_layernorm.output"), lfs: false);
        var s = await Assert.ThrowsAsync<SaeFormatException>(() => client.LoadAsync(other));
        Assert.Equal(("blocks.3.hook_mlp_out", "blocks.4.hook_mlp_out"), (s.Expected, s.Actual));

        // A missing config.json is a hub error, not a silent SAE without sites.
        var bare = Entry(SaeSite.ResidualStream, "resid_post/layer_3_width_4k_l0_medium", 2);
        Hub.AddFile(bare.RepoId, bare.FilePath, Weights(48, DIn, skip: false));
        await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.LoadAsync(bare));
    }
}
