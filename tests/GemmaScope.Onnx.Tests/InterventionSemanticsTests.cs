using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// Issue 13's intervention semantics: the in-graph JumpReLU is the core's (pre &gt; θ and pre &gt; 0) also for negative
/// thresholds; edits are seen by later sites, including one on the same tensor (TransformerLens order); the edited site's
/// capture is its input and <see cref="RunResult.EditedActivations"/> its output.
/// </summary>
public class InterventionSemanticsTests
{
    private const double Tol = 5e-5;

    private static SaeTensors WithThresholds(SaeTensors sae, Func<int, float> threshold) => SaeTensors.Create(sae.InputSize, sae.FeatureCount,
        sae.EncoderWeights, sae.EncoderBias, Enumerable.Range(0, sae.FeatureCount).Select(threshold).ToArray(), sae.DecoderWeights, sae.DecoderBias, sae.HookName);

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [InlineData("built")]
    [NativeData]
    public void NegativeThresholdsSpliceAndCaptureTheCoresFeatures(string layout)
    {
        var site = HookPoint.ResidPost(1);
        var ids = TokenIds.Random(12, seed: 41);
        using var model = TestData.Open(layout);
        // Thresholds in (-6, 0.5]: many features have pre in (θ, 0], where "pre > θ" alone would fire with a negative value.
        var rng = new Random(3);
        var sae = WithThresholds(TestSaes.Random(model.Width(site), 64, seed: 42), _ => (float)(0.5 - (6.5 * rng.NextDouble())));
        using var core = TestSaes.ToCore(sae);

        var run = model.Run(ids, capture: [site], interventions: new Interventions { Splice = [new SaeSplice(site, sae) { CaptureFeatures = true }] });

        // Features: exactly what the core's Encode gives on the captured (pre-splice) activations, BOS excepted.
        var expectedFeatures = core.Encode(run.Activations(site));
        var features = run.Features(site);
        int m = sae.FeatureCount;
        Assert.All(features[..m].ToArray(), v => Assert.Equal(0f, v));
        Approx.Close(features[m..], Approx.Widen(expectedFeatures.AsSpan(m)), Tol, $"{layout} features with negative thresholds");
        Assert.DoesNotContain(features.ToArray(), v => v < 0);

        // The storable forms hold the same numbers.
        var sparse = run.GetFeatures(site);
        Assert.Equal((ids.Length, m, 0), (sparse.TokenCount, sparse.FeatureCount, sparse.L0(0)));
        var dense = new float[ids.Length * m];
        sparse.ToDense(dense);
        Assert.Equal(features.ToArray(), dense);
        var logits = run.GetLogits();
        Assert.Equal(new nint[] { ids.Length, run.VocabSize }, logits.Lengths.ToArray());
        Assert.Equal(run.Logits()[run.VocabSize + 7], logits[1, 7]);
        Assert.Equal(run.Loss().ToArray(), run.GetLoss());
        Assert.Equal(ids, run.GetIds());

        // The test is not vacuous: some pre-activations lie in (θ, 0] (a splice without "pre > 0" lets them through).
        var pre = TestSaes.Reference(sae).Pre(run.Activations(site));
        int between = Enumerable.Range(m, pre.Length - m).Count(k => pre[k] > sae.Threshold.Span[k % m] && pre[k] <= 0);

        Assert.True(between > 50, $"only {between} pre-activations in (θ, 0]");

        // Logits: the float64 reference with the core's JumpReLU spliced in.
        var expected = TestData.ReferenceWith(ids, (site, (x, t) => TestSaes.Splice(x, t, sae, skipBosOf: ids)));
        Approx.Close(run.Logits(), expected.Logits, Tol, $"{layout} spliced logits with negative thresholds");
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [InlineData("built")]
    [NativeData]
    public void ASiteDownstreamOfASteerOnTheSameTensorShowsTheSteeredValue(string layout)
    {
        var steered = HookPoint.ResidPost(1);
        var next = HookPoint.ResidPre(2); // the same tensor in the graph, the next hook point in TransformerLens
        var later = HookPoint.ResidMid(2);
        var ids = TokenIds.Random(9, seed: 43);
        using var model = TestData.Open(layout);
        var v = Enumerable.Range(0, model.Width(steered)).Select(i => (float)Math.Sin(i + 1)).ToArray();

        var run = model.Run(ids, capture: [steered, next, later], interventions: new Interventions { Steer = [Steering.Add(steered, v)] });

        var clean = TinyModels.Gemma2Reference.Forward(ids);
        var expected = TestData.ReferenceWith(ids, (steered, (x, _) => TestSaes.Steer(x, v)));
        Approx.Close(run.Activations(next), expected.Hooks[next.Name], Tol, $"{layout} resid_pre(2) after steering resid_post(1)");
        Approx.Close(run.Activations(later), expected.Hooks[later.Name], Tol, $"{layout} resid_mid(2)");
        Approx.Close(run.Activations(steered), clean.Hooks[steered.Name], Tol, $"{layout} the steered site's capture is the steering's input");
        Approx.Close(run.EditedActivations(steered), expected.Hooks[steered.Name], Tol, $"{layout} EditedActivations is the steering's output");
        Approx.Close(run.EditedActivations(next), expected.Hooks[next.Name], Tol, $"{layout} an unedited site's EditedActivations equals its Activations");
        Assert.Equal(run.GetEditedActivations(steered).Span.ToArray(), run.EditedActivations(steered).ToArray());
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [InlineData("built")]
    [NativeData]
    public void EditsOnOneTensorApplyInForwardOrderAcrossSites(string layout)
    {
        // Steer at resid_post(1) (earlier) and splice at resid_pre(2) (later, same tensor): the splice encodes the steered stream.
        var first = HookPoint.ResidPost(1);
        var second = HookPoint.ResidPre(2);
        var ids = TokenIds.Random(10, seed: 44);
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(second), 40, seed: 45);
        var v = Enumerable.Range(0, model.Width(first)).Select(i => 2f * (float)Math.Cos(i)).ToArray();

        var run = model.Run(ids, capture: [first, second], interventions: new Interventions
        {
            Splice = [new SaeSplice(second, sae) { CaptureFeatures = true }],
            Steer = [Steering.Add(first, v)],
        });

        var expected = TestData.ReferenceWith(ids, (first, (x, _) => TestSaes.Steer(x, v)), (second, (x, t) => TestSaes.Splice(x, t, sae, skipBosOf: ids)));
        Approx.Close(run.Logits(), expected.Logits, Tol, $"{layout} steer then splice");
        Approx.Close(run.EditedActivations(first), Approx.Widen(run.Activations(second)), 1e-6, "the splice's input is the steering's output");
        Approx.Close(run.EditedActivations(second), expected.Hooks[second.Name], Tol, "the splice's output");
        using var core = TestSaes.ToCore(sae);
        var f = core.Encode(run.Activations(second));
        Approx.Close(run.Features(second)[40..], Approx.Widen(f.AsSpan(40)), Tol, "features of the steered stream");
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("genai")]
    [InlineData("built")]
    [NativeData]
    public void CallbacksOnTwoSitesOfOneTensorChainAndTheirOutputsAreCaptured(string layout)
    {
        var first = HookPoint.ResidPost(0);
        var second = HookPoint.ResidPre(1);
        var downstream = HookPoint.AttnOut(1);
        var ids = TokenIds.Random(8, seed: 46);
        using var model = TestData.Open(layout);
        float[]? seenBySecond = null;
        var run = model.Run(ids, capture: [first, second, downstream], interventions: new Interventions
        {
            Hooks =
            [
                new ActivationHook(second, (x, tokens, width) =>
                {
                    seenBySecond = x.ToArray();
                    for (int i = 0; i < x.Length; i++)
                    {
                        x[i] = (x[i] * 0.5f) + 1f;
                    }
                }),
                new ActivationHook(first, (x, tokens, width) =>
                {
                    for (int i = 0; i < x.Length; i++)
                    {
                        x[i] += i % 3;
                    }
                }),
            ],
        });

        var clean = TinyModels.Gemma2Reference.Forward(ids);
        static void AddIMod3(double[] x, int tokens)
        {
            for (int i = 0; i < x.Length; i++)
            {
                x[i] += i % 3;
            }
        }

        static void HalveAndAddOne(double[] x, int tokens)
        {
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (x[i] * 0.5) + 1;
            }
        }

        var expected = TestData.ReferenceWith(ids, (first, AddIMod3), (second, HalveAndAddOne));
        Approx.Close(run.Logits(), expected.Logits, Tol, $"{layout} two callbacks on one tensor");
        Approx.Close(run.Activations(first), clean.Hooks[first.Name], Tol, "first callback's input");
        Approx.Close(run.EditedActivations(first), expected.Hooks[first.Name], Tol, "first callback's output");
        Approx.Close(run.Activations(second), Approx.Widen(run.EditedActivations(first)), 0, "second site's input is the first's output");
        Approx.Close(seenBySecond!, Approx.Widen(run.EditedActivations(first)), 0, "the second callback saw the first's edit");
        Approx.Close(run.EditedActivations(second), expected.Hooks[second.Name], Tol, "second callback's output");
        Approx.Close(run.Activations(downstream), expected.Hooks[downstream.Name], Tol, "a later site");
    }

    [Theory]
    [InlineData("genai")]
    [NativeData]
    public void SpliceOutputIsCapturedAsEditedActivations(string layout)
    {
        var site = HookPoint.MlpOut(2);
        var ids = TokenIds.Random(7, seed: 47);
        using var model = TestData.Open(layout);
        var sae = TestSaes.Random(model.Width(site), 24, seed: 48);
        var run = model.Run(ids, capture: [site], interventions: new Interventions { Splice = [new SaeSplice(site, sae)] });
        var x = Approx.Widen(run.Activations(site));
        TestSaes.Splice(x, ids.Length, sae, skipBosOf: ids);
        Approx.Close(run.EditedActivations(site), x, Tol, "splice output");
        Assert.Contains("before and after edits", run.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("torch")]
    [NativeData]
    public void WidthMismatchIsRefusedForSpliceSteerAndEncodeWithBothNames(string layout)
    {
        using var model = TestData.Open(layout);
        var resid = HookPoint.ResidPost(1); // 48 wide
        var z = HookPoint.AttnZ(1);         // 64 wide
        var ids = TokenIds.Random(4, seed: 49);
        var zSae = TestSaes.Random(64, 16, seed: 50).WithHookName(z.Name);

        var e = Assert.Throws<ArgumentException>(() => model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(resid, zSae) { AllowOtherSite = true }] }));
        Assert.Contains(resid.Name, e.Message, StringComparison.Ordinal);
        Assert.Contains(z.Name, e.Message, StringComparison.Ordinal);

        e = Assert.Throws<ArgumentException>(() => model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(resid, zSae, 3, 2f) with { AllowOtherSite = true }] }));
        Assert.Contains(resid.Name, e.Message, StringComparison.Ordinal);
        Assert.Contains(z.Name, e.Message, StringComparison.Ordinal);
        Assert.Contains("64", e.Message, StringComparison.Ordinal);
        Assert.Contains("48", e.Message, StringComparison.Ordinal);

        // 4 tokens × 48 = 192 = 3 × 64: a flat span encodes "successfully" into 3 rows; the captured activation does not.
        var run = model.Run(ids, capture: [resid]);
        using var core = TestSaes.ToCore(zSae, z.Name);
        Assert.Equal(3 * 16, core.Encode(run.Activations(resid)).Length);
        e = Assert.Throws<ArgumentException>(() => core.EncodeSparse(run.GetActivations(resid)));
        Assert.Contains(resid.Name, e.Message, StringComparison.Ordinal);
        Assert.Contains(z.Name, e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => core.EncodeSparse(run.GetActivations(resid), allowOtherSite: true));
        Assert.Throws<ArgumentException>(() => core.Encode(run.GetActivations(resid), allowOtherSite: true));
        Assert.Throws<ArgumentException>(() => core.Encode(run.GetActivations(resid).ToTensor()));
    }
}
