using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

public class CaptureTests
{
    private const double Tol = 2e-5;

    [Theory]
    [InlineData("torch")]
    [InlineData("external")]
    [InlineData("genai")]
    [NativeData]
    public void EveryHookPointOfEveryLayerMatchesTheFloat64Reference(string layout)
    {
        var reference = TinyModels.Gemma2Reference;
        var ids = TokenIds.Random(11, seed: 7);
        var expected = reference.Forward(ids);
        using var model = TestData.Open(layout);
        Assert.Equal(reference.Layers, model.LayerCount);
        var sites = TestData.AllSites(model.LayerCount).ToArray();

        var run = model.Run(ids, capture: sites);

        foreach (var site in sites)
        {
            Approx.Close(run.Activations(site), expected.Hooks[site.Name], Tol, $"{layout} {site.Name} ({model.TensorName(site)})");
        }

        Assert.Equal(reference.Heads * reference.HeadDim, run.Width(HookPoint.AttnZ(0)));
        Assert.Equal(reference.D, run.Width(HookPoint.ResidPost(3)));
        Approx.Close(run.Logits(), expected.Logits, Tol, $"{layout} logits");
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [InlineData("built")]
    [NativeData]
    public void PaddedBatchGivesEachSequenceItsUnpaddedResult(string layout)
    {
        var reference = TinyModels.Gemma2Reference;
        int[][] seqs = [TokenIds.Random(12, seed: 1), TokenIds.Random(5, seed: 2), TokenIds.Random(9, seed: 3)];
        using var model = TestData.Open(layout);
        var site = HookPoint.ResidPost(2);
        var run = model.RunBatch(seqs, capture: [site, HookPoint.AttnZ(1)]);
        for (int b = 0; b < seqs.Length; b++)
        {
            var expected = reference.Forward(seqs[b]);
            Assert.Equal(seqs[b].Length, run.TokenCount(b));
            Approx.Close(run.Activations(site, b), expected.Hooks[site.Name], Tol, $"{layout} seq {b} {site.Name}");
            Approx.Close(run.Activations(HookPoint.AttnZ(1), b), expected.Hooks["blocks.1.attn.hook_z"], Tol, $"{layout} seq {b} z");
            Approx.Close(run.Logits(b), expected.Logits, Tol, $"{layout} seq {b} logits");
            var loss = ReferenceLoss(expected.Logits, seqs[b], reference.Vocab);
            Approx.Close(run.Loss(b), loss, 1e-4, $"{layout} seq {b} loss");
        }
    }

    [Fact]
    public void ResidPostOfTheLastLayerOfTheGenAiLayoutIsEmittedByTheFinalSkipNorm()
    {
        using var model = GemmaModel.Load(TestData.ModelPath("genai"));
        Assert.EndsWith("final_norm_layernorm/output_3", model.TensorName(HookPoint.ResidPost(3)), StringComparison.Ordinal);
        Assert.Equal("/model/layers.2/input_layernorm/output_3", model.TensorName(HookPoint.ResidPost(1)));
    }

    [Fact]
    public void SessionsAreCachedPerSetOfHookPoints()
    {
        var ids = TokenIds.Random(6, seed: 5);
        using var model = GemmaModel.Load(TestData.ModelPath("torch"));
        var a = model.Run(ids, capture: [HookPoint.MlpOut(1)]);
        var b = model.Run(ids, capture: [HookPoint.MlpOut(1)]);
        Assert.True(a.Activations(HookPoint.MlpOut(1)).SequenceEqual(b.Activations(HookPoint.MlpOut(1))));
        Assert.Throws<KeyNotFoundException>(() => a.Activations(HookPoint.MlpOut(2)));

        // resid_post(0) and resid_pre(1) are one tensor: asked for in turn or together, each is returned under its own name
        var post = model.Run(ids, capture: [HookPoint.ResidPost(0)]).Activations(HookPoint.ResidPost(0)).ToArray();
        var pre = model.Run(ids, capture: [HookPoint.ResidPre(1)]).Activations(HookPoint.ResidPre(1)).ToArray();
        var both = model.Run(ids, capture: [HookPoint.ResidPre(1), HookPoint.ResidPost(0)]);
        Assert.Equal(post, pre);
        Assert.Equal(post, both.Activations(HookPoint.ResidPre(1)).ToArray());
        Assert.Equal(post, both.Activations(HookPoint.ResidPost(0)).ToArray());
    }

    internal static double[] ReferenceLoss(double[] logits, int[] ids, int vocab)
    {
        var loss = new double[ids.Length - 1];
        for (int t = 0; t + 1 < ids.Length; t++)
        {
            double max = double.NegativeInfinity;
            for (int v = 0; v < vocab; v++)
            {
                max = Math.Max(max, logits[(t * vocab) + v]);
            }

            double sum = 0;
            for (int v = 0; v < vocab; v++)
            {
                sum += Math.Exp(logits[(t * vocab) + v] - max);
            }

            loss[t] = max + Math.Log(sum) - logits[(t * vocab) + ids[t + 1]];
        }

        return loss;
    }
}
