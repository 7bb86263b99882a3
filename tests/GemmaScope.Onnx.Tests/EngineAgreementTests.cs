using GemmaScope.Onnx;
using GemmaScope.Onnx.Runtime.Engines.Native;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// The ONNX Runtime engine and the native engine on the same checkpoint: every hook both have, at every layer, and the
/// logits agree within 2e-5 of each row's scale (max |x| of the ONNX Runtime row, at least 1); batches as well (padded on
/// one side, packed on the other).
/// </summary>
public class EngineAgreementTests
{
    private const double Tol = 2e-5;

    public static TheoryData<string> Checkpoints => ["tiny-gemma2-hf/single", "tiny-gemma2-hf/sharded", "tiny-gemma2-hf/bf16", "tiny-gemma3/text"];

    private static string Folder(string name) => Path.Combine(TinyModels.Fixtures, name);

    [NativeTheory]
    [MemberData(nameof(Checkpoints))]
    public void EveryHookOfEveryLayerAndTheLogitsAgree(string checkpoint)
    {
        using var ort = GemmaModel.FromPretrained(Folder(checkpoint), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        using var native = GemmaModel.FromPretrained(Folder(checkpoint), EngineData.Options(GemmaEngineKind.Native));
        Assert.Equal(GemmaEngineKind.Native, native.Engine);
        Assert.Equal(GemmaEngineKind.OnnxRuntime, ort.Engine);
        int[][] batch = [TokenIds.Random(13, seed: 70), TokenIds.Random(4, seed: 71), TokenIds.Random(9, seed: 72)];

        // Every hook ONNX Runtime has (the native engine has them all); a filtered run_with_cache on both.
        var a = ort.RunBatchWithCache(batch);
        var b = native.RunBatchWithCache(batch, p => a.Captured.Contains(p));

        Assert.Equal(a.Captured.ToHashSet(), b.Captured.ToHashSet());
        Assert.True(a.Captured.Count >= (8 * ort.LayerCount) + 2, $"only {a.Captured.Count} hooks compared");
        for (int s = 0; s < batch.Length; s++)
        {
            foreach (var site in a.Captured)
            {
                AssertRowsClose(a.Activations(site, s), b.Activations(site, s), a.Width(site), $"{checkpoint} seq {s} {site.Name}");
            }

            AssertRowsClose(a.Logits(s), b.Logits(s), a.VocabSize, $"{checkpoint} seq {s} logits");
            Assert.Equal(a.MeanLoss(s), b.MeanLoss(s), 1e-4);
        }
    }

    [NativeTheory]
    [MemberData(nameof(Checkpoints))]
    public void SplicesSteeringAndCallbacksAgree(string checkpoint)
    {
        using var ort = GemmaModel.FromPretrained(Folder(checkpoint), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        using var native = GemmaModel.FromPretrained(Folder(checkpoint), EngineData.Options(GemmaEngineKind.Native));
        var z = HookPoint.AttnZ(1);
        var resid = HookPoint.ResidPost(0);
        var sae = TestSaes.Random(ort.Width(z), 37, seed: 73);
        var steer = TestSaes.Random(ort.Width(resid), 5, seed: 74);
        var iv = new Interventions
        {
            Splice = [new SaeSplice(z, sae) { CaptureFeatures = true, Clamp = [new FeatureClamp(2, 3f)], UseErrorTerm = true }],
            Steer = [Steering.Feature(resid, steer, 1, 4f)],
            Hooks = [new ActivationHook(HookPoint.MlpOut(1), (x, tokens, width) => x[..width].Clear())],
        };
        int[][] batch = [TokenIds.Random(8, seed: 75), TokenIds.Random(11, seed: 76)];
        HookPoint[] capture = [resid, z, HookPoint.MlpOut(1), HookPoint.ResidPost(2)];

        var a = ort.RunBatch(batch, capture, iv);
        var b = native.RunBatch(batch, capture, iv);

        for (int s = 0; s < batch.Length; s++)
        {
            foreach (var site in capture)
            {
                AssertRowsClose(a.Activations(site, s), b.Activations(site, s), a.Width(site), $"{checkpoint} seq {s} {site.Name}");
                AssertRowsClose(a.EditedActivations(site, s), b.EditedActivations(site, s), a.Width(site), $"{checkpoint} seq {s} {site.Name} edited");
            }

            AssertRowsClose(a.Features(z, s), b.Features(z, s), sae.FeatureCount, $"{checkpoint} seq {s} features");
            AssertRowsClose(a.Logits(s), b.Logits(s), a.VocabSize, $"{checkpoint} seq {s} logits");
        }
    }

    [Fact]
    public void ARunWithoutLogitsStopsAfterTheLastBlockItNeeds()
    {
        RunHooks Hooks(params HookPoint[] capture) => new(capture, Interventions.None, bosId: 2);
        Assert.Equal(0, Hooks(HookPoint.ResidPost(0)).LastBlock(4));
        Assert.Equal(1, Hooks(HookPoint.Embed, HookPoint.AttnPattern(1)).LastBlock(4));
        Assert.Null(Hooks(HookPoint.ResidPost(3)).LastBlock(4)); // the last block: nothing to skip but the head
        Assert.Null(Hooks(HookPoint.LnFinalNormalized).LastBlock(4)); // the final norm runs after every block
        var hooks = new RunHooks([HookPoint.ResidPre(0)], new Interventions { Hooks = [new ActivationHook(HookPoint.MlpOut(2), (_, _, _) => { })] }, 2);
        Assert.Equal(2, hooks.LastBlock(4));
    }

    // |native − ORT| ≤ Tol · max(1, max |ORT| of the row), element-wise.
    private static void AssertRowsClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, int width, string what) =>
        Approx.Close(actual, Approx.Widen(expected), Tol, what, width);
}
