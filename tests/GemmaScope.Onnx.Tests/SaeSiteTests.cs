using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>Issue 14: an SAE knows its hook point; splices, steering and capture-then-encode use it and refuse other sites unless asked.</summary>
public class SaeSiteTests
{
    private const double Tol = 5e-5;

    [Theory]
    [InlineData("torch")]
    [NativeData]
    public void SpliceSteerAndEncodeUseTheSaesOwnHookPoint(string layout)
    {
        var site = HookPoint.ResidPost(2);
        var ids = TokenIds.Random(9, seed: 60);
        using var model = TestData.Open(layout);
        var tensors = TestSaes.Random(model.Width(site), 32, seed: 61);
        using var sae = TestSaes.ToCore(tensors, site.Name);
        Assert.Equal(site, HookPoint.Of(sae));
        Assert.Equal(site, new SaeSplice(sae).Site);
        Assert.Equal(site, new SaeSplice(tensors.WithHookName(site.Name)).Site);
        Assert.Equal(site.Name, SaeTensors.From(sae).HookName);

        var implicitSite = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(sae)] });
        var explicitSite = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(site, tensors)] });
        Assert.Equal(explicitSite.Logits().ToArray(), implicitSite.Logits().ToArray());
        Assert.NotEqual(model.Run(ids).Logits().ToArray(), implicitSite.Logits().ToArray());

        var steer = Steering.Feature(sae, 5, 4f);
        Assert.Equal(site, steer.Site);
        var steered = model.Run(ids, interventions: new Interventions { Steer = [steer] });
        Assert.Equal(model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(site, tensors, 5, 4f)] }).Logits().ToArray(), steered.Logits().ToArray());

        var run = model.Run(ids, capture: [HookPoint.Of(sae)]);
        var features = run.EncodeSparse(sae);
        var expected = sae.EncodeSparse(run.Activations(site));
        Assert.Equal(expected.Indices.ToArray(), features.Indices.ToArray());
        Assert.Equal(expected.Values.ToArray(), features.Values.ToArray());
        Assert.True(features.MeanL0 > 0);
    }

    [Theory]
    [InlineData("genai")]
    [NativeData]
    public void AnotherSiteOfTheSameWidthIsRefusedWithBothNamesUnlessAllowed(string layout)
    {
        var own = HookPoint.ResidPost(2);
        var other = HookPoint.ResidPost(1); // same width (d_model)
        var ids = TokenIds.Random(8, seed: 62);
        using var model = TestData.Open(layout);
        var tensors = TestSaes.Random(model.Width(own), 32, seed: 63).WithHookName(own.Name);
        using var sae = TestSaes.ToCore(tensors, own.Name);

        void Refused(Action act, string what)
        {
            var e = Assert.Throws<ArgumentException>(act);
            Assert.True(e.Message.Contains(own.Name, StringComparison.Ordinal) && e.Message.Contains(other.Name, StringComparison.Ordinal), $"{what}: {e.Message}");
        }

        Refused(() => model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(other, sae)] }), "splice of a loaded SAE");
        Refused(() => model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(other, tensors)] }), "splice of tensors");
        Refused(() => model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(other, sae, 1, 3f)] }), "steering");
        Refused(() => model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(other, tensors, 1, 3f)] }), "steering with tensors");
        var run = model.Run(ids, capture: [other]);
        Refused(() => sae.EncodeSparse(run.GetActivations(other)), "encode of a capture");

        // Opt-in: the same interventions at the other site now run and equal the float64 reference.
        var spliced = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(other, sae) { AllowOtherSite = true }] });
        var expected = TestData.ReferenceWith(ids, (other, (x, t) => TestSaes.Splice(x, t, tensors, skipBosOf: ids)));
        Approx.Close(spliced.Logits(), expected.Logits, Tol, "splice at another site, allowed");
        model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(other, sae, 1, 3f) with { AllowOtherSite = true }] });
        Assert.Equal(sae.EncodeSparse(run.Activations(other)).Values.ToArray(), sae.EncodeSparse(run.GetActivations(other), allowOtherSite: true).Values.ToArray());

        // An SAE that does not know its site is applied where it is told (widths still checked).
        var anonymous = TestSaes.Random(model.Width(own), 32, seed: 63);
        model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(other, anonymous)] });
    }

    [Fact]
    public void AnSaeWithoutAUsableHookNameNeedsAnExplicitSite()
    {
        using var noName = TestSaes.ToCore(TestSaes.Random(48, 8, seed: 64), null);
        var e = Assert.Throws<ArgumentException>(() => new SaeSplice(noName));
        Assert.Contains("no hook name", e.Message, StringComparison.Ordinal);
        Assert.Contains("SaeLoadOptions.Config", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Steering.Feature(noName, 0, 1f));
        using var unknown = TestSaes.ToCore(TestSaes.Random(48, 8, seed: 64), "blocks.1.hook_q");
        e = Assert.Throws<ArgumentException>(() => HookPoint.Of(unknown));
        Assert.Contains("blocks.1.hook_q", e.Message, StringComparison.Ordinal);
        using var embed = TestSaes.ToCore(TestSaes.Random(48, 8, seed: 64), "hook_embed");
        Assert.Equal(HookPoint.Embed, HookPoint.Of(embed)); // Gemma Scope's embedding SAEs read hook_embed
    }

    [Theory]
    [InlineData("torch")]
    [NativeData]
    public void ResultTypesPrintWhatTheyHold(string layout)
    {
        var site = HookPoint.ResidPost(1);
        using var model = TestData.Open(layout);
        var tensors = TestSaes.Random(48, 8, seed: 65).WithHookName(site.Name);
        var splice = new SaeSplice(tensors) { UseErrorTerm = true, Clamp = [new FeatureClamp(3, 0f)] };
        Assert.Equal("SaeSplice(blocks.1.hook_resid_post, SaeTensors(d_in=48, d_sae=8, blocks.1.hook_resid_post), error term, clamp #3=0)", splice.ToString());
        Assert.Equal("Steering(blocks.1.hook_resid_post, feature 2 × 1.5 of SaeTensors(d_in=48, d_sae=8, blocks.1.hook_resid_post))", Steering.Feature(tensors, 2, 1.5f).ToString());
        var run = model.Run(TokenIds.Random(5, seed: 66), capture: [site]);
        Assert.Matches(@"^RunResult\(1 sequence of 5 tokens, vocab 256, mean loss \d+\.\d{4}; captured blocks\.1\.hook_resid_post\)$", run.ToString());
        Assert.Equal("ActivationBatch(5 tokens × 48 at blocks.1.hook_resid_post)", run.GetActivations(site).ToString());
        Assert.Matches(layout == "native" ? @"^GemmaModel\(4 layers, native engine, .*single\)$" : @"^GemmaModel\(4 layers, ONNX Runtime, .*model\.onnx\)$", model.ToString());
        var g = model.Generate([2, 10, 11], new GenerationOptions { MaxNewTokens = 3, EosId = null });
        Assert.Matches(@"^GenerationResult\(3 prompt tokens \[2, 10, 11\] \+ 3 new \[\d+, \d+, \d+\]( "".*"")?, KV cache (on|off)\)$", g.ToString());
    }
}
