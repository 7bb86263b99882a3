using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

public class InterventionTests
{
    private const double Tol = 5e-5;

    [Theory]
    [InlineData("torch", "blocks.1.hook_resid_post")]
    [InlineData("genai", "blocks.1.hook_resid_post")]
    [InlineData("genai", "blocks.3.hook_resid_post")]
    [InlineData("torch", "blocks.2.attn.hook_z")]
    [InlineData("genai", "blocks.0.hook_mlp_out")]
    [InlineData("genai", "blocks.2.hook_resid_mid")]
    [NativeData("blocks.1.hook_resid_post")]
    [NativeData("blocks.3.hook_resid_post")]
    [NativeData("blocks.2.attn.hook_z")]
    [NativeData("blocks.0.hook_mlp_out")]
    [NativeData("blocks.2.hook_resid_mid")]
    public void SpliceEqualsTheReferenceWithTheReconstructionSubstituted(string layout, string siteName)
    {
        var site = HookPoint.Parse(siteName);
        var reference = TinyModels.Gemma2Reference;
        var ids = TokenIds.Random(10, seed: 21);
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(site), 40, seed: 5);

        var run = model.Run(ids, capture: [site], interventions: new Interventions { Splice = [new SaeSplice(site, sae) { CaptureFeatures = true }] });
        var expected = TestData.ReferenceWith(ids, (site, (x, t) => TestSaes.Splice(x, t, sae, skipBosOf: ids)));

        Approx.Close(run.Logits(), expected.Logits, Tol, $"{layout} spliced logits at {site}");
        Assert.All(run.Features(site)[..40].ToArray(), v => Assert.Equal(0f, v)); // BOS is left alone
        var clean = reference.Forward(ids);
        Approx.Close(run.Activations(site), clean.Hooks[site.Name], Tol, "captured site is the activation before the splice");
        Assert.Equal(ids.Length * 40, run.Features(site).Length);
        Assert.Contains(run.Features(site).ToArray(), v => v > 0);
        Assert.Contains(run.Features(site).ToArray(), v => v == 0);
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [NativeData]
    public void SpliceWithErrorTermLeavesLogitsUnchanged(string layout)
    {
        var site = HookPoint.ResidPost(2);
        var ids = TokenIds.Random(9, seed: 4);
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(site), 33, seed: 6);
        var clean = model.Run(ids);
        var withError = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(site, sae) { UseErrorTerm = true }] });
        var without = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(site, sae)] });
        Approx.Close(withError.Logits(), Approx.Widen(clean.Logits()), Tol, "error term");
        Assert.True(Math.Abs(without.MeanLoss() - clean.MeanLoss()) > 1e-3, "the splice without error term must change the loss");
        double delta = model.DeltaLoss(ids, new Interventions { Splice = [new SaeSplice(site, sae)] });
        Assert.Equal(without.MeanLoss() - clean.MeanLoss(), delta, 1e-9);
    }

    [Theory]
    [InlineData("torch")]
    [NativeData]
    public void ClampEqualsTheReferenceWithTheClampedReconstruction(string layout)
    {
        var site = HookPoint.ResidPost(1);
        var ids = TokenIds.Random(10, seed: 8);
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(site), 40, seed: 9);
        FeatureClamp[] clamp = [new(3, 0f), new(17, 6.5f)];
        foreach (bool err in new[] { false, true })
        {
            var run = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(site, sae) { Clamp = clamp, UseErrorTerm = err }] });
            var expected = TestData.ReferenceWith(ids, (site, (x, t) => TestSaes.Splice(x, t, sae, clamp, err, skipBosOf: ids)));
            Approx.Close(run.Logits(), expected.Logits, Tol, $"clamp, error term {err}");
        }
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [NativeData]
    public void SteeringEqualsTheReferenceWithTheDecoderRowAdded(string layout)
    {
        var site = HookPoint.ResidPost(1);
        var ids = TokenIds.Random(10, seed: 12);
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(site), 40, seed: 13);
        var run = model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(site, sae, 7, 8f)] });
        var row = SaeTensors.DecoderRow(sae, 7).ToArray();
        var expected = TestData.ReferenceWith(ids, (site, (x, _) => TestSaes.Steer(x, row, 8.0)));
        Approx.Close(run.Logits(), expected.Logits, Tol, $"{layout} steered logits");
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [NativeData]
    public void CallbackPathEqualsInGraphPathAndTwoSitesAtOnce(string layout)
    {
        var a = HookPoint.ResidPost(0);
        var b = HookPoint.MlpOut(2);
        int[][] batch = [TokenIds.Random(10, seed: 30), TokenIds.Random(6, seed: 31)];
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(a), 40, seed: 14);
        var steerSae = TestSaes.Random(model.Width(b), 24, seed: 15);
        var steer = Steering.Feature(b, steerSae, 2, -5f);

        // BOS included here (ExcludeBos = false): the callback below splices every position
        var inGraph = model.RunBatch(batch, capture: [b], interventions: new Interventions { Splice = [new SaeSplice(a, sae) { ExcludeBos = false }], Steer = [steer] });

        var row = steer.Vector.ToArray();
        var calls = 0;
        var callbacks = model.RunBatch(batch, capture: [b], interventions: new Interventions
        {
            Hooks =
            [
                new ActivationHook(b, (x, tokens, width) =>
                {
                    calls++;
                    for (int i = 0; i < tokens * width; i++)
                    {
                        x[i] += row[i % width];
                    }
                }),
                new ActivationHook(a, (x, tokens, width) =>
                {
                    calls++;
                    var xd = Approx.Widen(x);
                    TestSaes.Splice(xd, tokens, sae);
                    for (int i = 0; i < xd.Length; i++)
                    {
                        x[i] = (float)xd[i];
                    }
                }),
            ],
        });
        Assert.Equal(4, calls);

        for (int s = 0; s < batch.Length; s++)
        {
            var expected = TestData.ReferenceWith(batch[s], (a, (x, t) => TestSaes.Splice(x, t, sae)), (b, (x, _) => TestSaes.Steer(x, row)));
            Approx.Close(inGraph.Logits(s), expected.Logits, Tol, $"{layout} in-graph two sites, seq {s}");
            Approx.Close(callbacks.Logits(s), expected.Logits, Tol, $"{layout} callbacks two sites, seq {s}");
            Approx.Close(callbacks.Activations(b, s), Approx.Widen(inGraph.Activations(b, s)), Tol, "captured site downstream of a callback");
        }
    }

    [Theory]
    [InlineData("torch")]
    [NativeData]
    public void SaeWhoseInputSizeDoesNotMatchTheSiteIsRefused(string layout)
    {
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(48, 16, seed: 1); // d_model, but hook_z is heads × head_dim = 64
        var e = Assert.Throws<ArgumentException>(() =>
            model.Run(TokenIds.Random(5, 1), interventions: new Interventions { Splice = [new SaeSplice(HookPoint.AttnZ(1), sae)] }));
        Assert.Contains("48", e.Message, StringComparison.Ordinal);
        Assert.Contains("64", e.Message, StringComparison.Ordinal);
        Assert.Contains("blocks.1.attn.hook_z", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => model.Run(TokenIds.Random(5, 1),
            interventions: new Interventions { Steer = [Steering.Add(HookPoint.ResidPost(0), new float[47])] }));
        Assert.Throws<ArgumentException>(() => SaeTensors.Create(4, 3, new float[12], new float[3], new float[3], new float[11], new float[4]));
    }
}
