using GemmaScope.Core.Tests.Support;

namespace GemmaScope.Core.Tests.Sae;

/// <summary>Issue 14: SAEs carry their hook name and refuse other sites; results have storable forms and print what they hold.</summary>
public class SitesAndStorableResultsTests : IDisposable
{
    private const string Site = "blocks.20.hook_resid_post";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static JumpReLUSae Random(int dIn, int dSae, string? hookName, int seed = 1)
    {
        var (_, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(dIn, dSae, seed);
        return JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, dIn, new SaeLoadOptions { Config = new SaeConfig { HookName = hookName } });
    }

    [Fact]
    public void SaeConfigHookNamesAndSitesAreOneValue()
    {
        var c = new SaeConfig { Site = HookPoint.ResidPost(20), OutputSite = HookPoint.MlpOut(3) };
        Assert.Equal(("blocks.20.hook_resid_post", "blocks.3.hook_mlp_out"), (c.HookName, c.OutputHookName));
        var d = new SaeConfig { HookName = "blocks.5.ln2.hook_normalized" };
        Assert.Equal(HookPoint.Ln2Normalized(5), d.Site);
        Assert.Null(d.OutputSite);

        // A name outside the Gemma vocabulary is kept as SAELens wrote it, but names no site.
        var other = new SaeConfig { HookName = "blocks.5.hook_not_a_site" };
        Assert.Equal("blocks.5.hook_not_a_site", other.HookName);
        Assert.Null(other.Site);
        Assert.Null(new SaeConfig().Site);
    }

    [Fact]
    public void EveryLoadingPathFillsTheHookName()
    {
        // options (npz carries no configuration)
        using (var viaOptions = JumpReLUSae.Load(Fixtures.Numpy("params.npz"), new SaeLoadOptions { Config = new SaeConfig { HookName = Site } }))
        {
            Assert.Equal(Site, viaOptions.Config.HookName);
        }

        // SAELens's cfg.json beside params.npz in a folder; the file wins over options
        var folder = _dir.File("npz-with-cfg");
        Directory.CreateDirectory(folder);
        File.Copy(Fixtures.Numpy("params.npz"), Path.Combine(folder, "params.npz"));
        File.WriteAllText(Path.Combine(folder, "cfg.json"), """{"d_in": 33, "d_sae": 100, "hook_name": "blocks.5.hook_mlp_out", "neuronpedia_id": "gemma-2-2b/5-gemmascope-mlp-16k"}""");
        using (var viaCfg = JumpReLUSae.Load(folder, new SaeLoadOptions { Config = new SaeConfig { HookName = Site } }))
        {
            Assert.Equal("blocks.5.hook_mlp_out", viaCfg.Config.HookName);
            Assert.Equal("gemma-2-2b/5-gemmascope-mlp-16k", viaCfg.Config.NeuronpediaId);
            Assert.Contains("blocks.5.hook_mlp_out", viaCfg.ToString(), StringComparison.Ordinal);
        }

        // one .safetensors file whose __metadata__ holds the cfg
        using var src = JumpReLUSae.Load(Fixtures.Numpy("params.npz"), new SaeLoadOptions { Config = new SaeConfig { HookName = "blocks.3.attn.hook_z" } });
        var file = _dir.File("one.safetensors");
        src.Save(file);
        using var viaMetadata = JumpReLUSae.Load(file);
        Assert.Equal("blocks.3.attn.hook_z", viaMetadata.Config.HookName);
    }

    [Fact]
    public void CapturedActivationsOfTheWrongWidthAreRefusedEvenWhenTheFloatCountDivides()
    {
        // 14 tokens × 24 = 336 = 12 × 28: the span overload cannot tell; the activation object can.
        using var sae = Random(28, 40, Site);
        var x = SaeReference.RandomInput(14, 24, seed: 2);
        Assert.Equal(12 * 40, sae.Encode(x).Length);
        var captured = new ActivationBatch(x, 24, "blocks.20.hook_resid_post");
        var e = Assert.Throws<ArgumentException>(() => sae.EncodeSparse(captured));
        Assert.Contains("24", e.Message, StringComparison.Ordinal);
        Assert.Contains("28", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => sae.Encode(captured, allowOtherSite: true));
        Assert.Throws<ArgumentException>(() => sae.Reconstruct(captured, allowOtherSite: true));
        Assert.Throws<ArgumentException>(() => sae.Encode(captured.ToTensor()));

        // A flat span that is not whole rows is refused by every span overload (naming InputSize).
        var ragged = new float[(28 * 3) + 5];
        Assert.Contains("InputSize 28", Assert.Throws<ArgumentException>(() => sae.Encode(ragged)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => sae.EncodeSparse(ragged));
        Assert.Throws<ArgumentException>(() => sae.Reconstruct(ragged, new float[ragged.Length]));
    }

    [Fact]
    public void ActivationsFromAnotherHookPointAreRefusedWithBothNamesUnlessAllowed()
    {
        using var sae = Random(28, 40, Site);
        var x = SaeReference.RandomInput(5, 28, seed: 3);
        var other = new ActivationBatch(x, 28, "blocks.19.hook_resid_post");
        var e = Assert.Throws<ArgumentException>(() => sae.EncodeSparse(other));
        Assert.Contains(Site, e.Message, StringComparison.Ordinal);
        Assert.Contains("blocks.19.hook_resid_post", e.Message, StringComparison.Ordinal);
        Assert.Contains("allowOtherSite", e.Message, StringComparison.Ordinal);

        var expected = sae.EncodeSparse(x);
        foreach (var ok in new[] { sae.EncodeSparse(other, allowOtherSite: true), sae.EncodeSparse(new ActivationBatch(x, 28, Site)), sae.EncodeSparse(new ActivationBatch(x, 28)) })
        {
            Assert.Equal(expected.Offsets.ToArray(), ok.Offsets.ToArray());
            Assert.Equal(expected.Indices.ToArray(), ok.Indices.ToArray());
            Assert.Equal(expected.Values.ToArray(), ok.Values.ToArray());
        }

        Assert.Equal(sae.Encode(x), sae.Encode(new ActivationBatch(x, 28, Site)));
        var xhat = sae.Reconstruct(new ActivationBatch(x, 28, Site, [.. Enumerable.Range(0, 5).Select(i => $"t{i}")]));
        var direct = new float[x.Length];
        sae.Reconstruct(x, direct);
        Assert.Equal(direct, xhat.ToArray());
        Assert.Equal((Site, "t4", 28), (xhat.HookName, xhat.Tokens![4], xhat.Width));

        using var anonymous = Random(28, 40, null);
        Assert.Equal(expected.Values.ToArray(), anonymous.EncodeSparse(other).Values.ToArray());
    }

    [Fact]
    public void ActivationBatchIsAnImmutableCopyWithItsShape()
    {
        var data = new float[] { 1, 2, 3, 4, 5, 6 };
        var a = new ActivationBatch(data, 3, "blocks.1.hook_resid_post", ["a", "b"]);
        data[0] = 99;
        Assert.Equal(1f, a[0, 0]);
        Assert.Equal((2, 3), (a.TokenCount, a.Width));
        Assert.Equal(new float[] { 4, 5, 6 }, a.Row(1));
        Assert.Equal(6f, a[1, 2]);
        var t = a.ToTensor();
        Assert.Equal(new nint[] { 2, 3 }, t.Lengths.ToArray());
        Assert.Equal(5f, t[1, 1]);
        a.ToArray()[1] = 77;
        Assert.Equal(2f, a.Span[1]);
        Assert.Equal("ActivationBatch(2 tokens × 3 at blocks.1.hook_resid_post)", a.ToString());
        Assert.Throws<ArgumentException>(() => new ActivationBatch(new float[7], 3));
        Assert.Throws<ArgumentException>(() => new ActivationBatch(new float[6], 3, tokens: ["only one"]));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Row(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => a[0, 3]);
    }

    [Fact]
    public void SparseBatchGivesStorableTokensAndFeatureColumns()
    {
        using var sae = Random(28, 40, Site);
        var x = SaeReference.RandomInput(6, 28, seed: 4);
        var batch = sae.EncodeSparse(x);
        var dense = sae.Encode(x);
        Assert.True(batch.MeanL0 > 1);

        var tokens = Enumerable.Range(0, batch.TokenCount).Select(batch.Token).ToList(); // storable: a List of them
        for (int t = 0; t < 6; t++)
        {
            var f = tokens[t];
            Assert.Equal(t, f.TokenIndex);
            Assert.Equal(batch.L0(t), f.Count);
            Assert.Equal(batch[t].Indices.ToArray(), f.Indices);
            Assert.Equal(batch[t].Values.ToArray(), f.Values);
            for (int j = 0; j < 40; j++)
            {
                Assert.Equal(dense[(t * 40) + j], f[j]);
            }

            Assert.Equal(batch[t].TopK(3), f.TopK(3));
        }

        for (int j = 0; j < 40; j++)
        {
            Assert.Equal(Enumerable.Range(0, 6).Select(t => dense[(t * 40) + j]).ToArray(), batch.Feature(j));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Feature(40));
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Token(6));

        var small = new SparseFeatureBatch(100, [0, 3, 3], [4, 50, 99], [1f, 9f, 3f]);
        Assert.Equal("SparseFeatureBatch(2 tokens × 100 features, mean L0 1.5)", small.ToString());
        Assert.Equal("token 0: L0 3, top #50 9, #99 3, #4 1", small.Token(0).ToString());
        Assert.Equal("token 1: L0 0", small.Token(1).ToString());
        Assert.Equal(0f, small.Token(0)[5]);
    }
}
