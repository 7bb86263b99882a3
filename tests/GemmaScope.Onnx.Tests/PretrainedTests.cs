using GemmaScope.Onnx;
using GemmaScope.Tests.Reference;

namespace GemmaScope.Tests;

/// <summary>GemmaModel.FromPretrained on the tiny Gemma 2 in Hugging Face's layout (tools/onnx-fixtures/make_tiny_hf_checkpoints.py).</summary>
public class PretrainedTests
{
    private const double Tol = 2e-5;

    private static Gemma2Reference ReferenceFor(string layout) => layout == "bf16" ? TestData.Bf16Reference : TestData.Reference;

    [Theory]
    [InlineData("single")]
    [InlineData("sharded")]
    [InlineData("bf16")]
    public void EveryHookOfEveryLayerAndTheLogitsEqualTheFloat64Reference(string layout)
    {
        var reference = ReferenceFor(layout);
        var ids = TestData.RandomIds(11, seed: 7); // longer than the sliding window (4)
        var expected = reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir(layout));
        Assert.Equal(reference.Layers, model.LayerCount);
        var sites = TestData.AllSites(model.LayerCount, withLn2: true).ToArray();

        var run = model.Run(ids, capture: sites);

        foreach (var site in sites)
        {
            Assert.Equal(site.Name, model.TensorName(site)); // resolved by name, no heuristics
            TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], Tol, $"{layout} {site.Name}");
        }

        Assert.Equal(reference.Heads * reference.HeadDim, run.Width(HookPoint.AttnZ(0)));
        TestData.AssertClose(run.Logits(), expected.Logits, Tol, $"{layout} logits");
    }

    [Fact]
    public void TheBf16CheckpointDiffersFromTheFloat32OneByTheRounding()
    {
        // guards the bf16 test above: the rounded reference must differ measurably from the float32 one
        var ids = TestData.RandomIds(11, seed: 7);
        var f32 = TestData.Reference.Forward(ids).Logits;
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("bf16"));
        var logits = model.Run(ids).Logits().ToArray();
        double worst = 0;
        for (int i = 0; i < f32.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(logits[i] - f32[i]));
        }

        Assert.True(worst > 1e-3, $"bf16 logits within {worst} of the float32 ones: the bf16 weights were not used");
    }

    [Theory]
    [InlineData("single")]
    [InlineData("sharded")]
    public void TheBuiltGraphAndTheTorchOnnxExportAgreeOnEveryHook(string layout)
    {
        // two independent paths from the same weights: our builder and torch.onnx's export of the PyTorch module
        var ids = TestData.RandomIds(13, seed: 17);
        using var built = GemmaModel.FromPretrained(TestData.CheckpointDir(layout));
        using var exported = GemmaModel.Load(TestData.ModelPath("torch"));
        var sites = TestData.AllSites(built.LayerCount).ToArray();
        var a = built.Run(ids, capture: sites);
        var b = exported.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            var expected = b.Activations(site).ToArray().Select(v => (double)v).ToArray();
            TestData.AssertClose(a.Activations(site), expected, Tol, $"{layout} vs torch.onnx {site.Name}");
        }

        TestData.AssertClose(a.Logits(), b.Logits().ToArray().Select(v => (double)v).ToArray(), Tol, $"{layout} vs torch.onnx logits");
    }

    [Fact]
    public void PaddedBatchGivesEachSequenceItsUnpaddedResult()
    {
        var reference = TestData.Reference;
        int[][] seqs = [TestData.RandomIds(12, seed: 1), TestData.RandomIds(5, seed: 2), TestData.RandomIds(9, seed: 3)];
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"));
        var site = HookPoint.ResidPost(2);
        var run = model.RunBatch(seqs, capture: [site, HookPoint.AttnZ(1)]);
        for (int b = 0; b < seqs.Length; b++)
        {
            var expected = reference.Forward(seqs[b]);
            Assert.Equal(seqs[b].Length, run.TokenCount(b));
            TestData.AssertClose(run.Activations(site, b), expected.Hooks[site.Name], Tol, $"seq {b} {site.Name}");
            TestData.AssertClose(run.Activations(HookPoint.AttnZ(1), b), expected.Hooks["blocks.1.attn.hook_z"], Tol, $"seq {b} z");
            TestData.AssertClose(run.Logits(b), expected.Logits, Tol, $"seq {b} logits");
            TestData.AssertClose(run.Loss(b), CaptureTests.ReferenceLoss(expected.Logits, seqs[b], reference.Vocab), 1e-4, $"seq {b} loss");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(40)]
    public void InputsPastTheSlidingWindowMatchTheReference(int extra)
    {
        var reference = TestData.Reference;
        var ids = TestData.RandomIds(reference.Window + extra, seed: 100 + extra);
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"));
        var expected = reference.Forward(ids);
        var run = model.Run(ids, capture: [HookPoint.AttnZ(0), HookPoint.AttnZ(1), HookPoint.ResidPost(3)]);
        foreach (var site in new[] { HookPoint.AttnZ(0), HookPoint.AttnZ(1), HookPoint.ResidPost(3) })
        {
            TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], Tol, $"window + {extra}: {site.Name}");
        }

        TestData.AssertClose(run.Logits(), expected.Logits, Tol, $"window + {extra}: logits");
    }
}
