using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// Transcoders on the tiny Gemma 2 built from its Hugging Face checkpoint (which has <c>blocks.{l}.ln2.hook_normalized</c>):
/// capture of both sites, the splice of <c>hook_mlp_out</c> with and without the error term, clamps, and steering.
/// </summary>
public sealed class TranscoderSpliceTests : IDisposable
{
    private const int Layer = 1;
    private const int DSae = 37;
    private static readonly HookPoint Input = HookPoint.Ln2Normalized(Layer);
    private static readonly HookPoint Output = HookPoint.MlpOut(Layer);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A random transcoder as a params.safetensors (Gemma Scope 2 key names), sites given through options as for an npz.</summary>
    private JumpReLUTranscoder Random(int dModel, int seed, bool skip) => JumpReLUTranscoder.Load(Write(dModel, seed, skip, "transcoder"), new SaeLoadOptions
    {
        Config = new SaeConfig { HookName = Input.Name, OutputHookName = Output.Name },
    });

    /// <summary>
    /// Random weights as Gemma Scope 2's params.safetensors; with <paramref name="type"/> "sae" or a config, a folder with
    /// Gemma Scope 2's config.json (layer <see cref="Layer"/>) beside it.
    /// </summary>
    private string Write(int dModel, int seed, bool skip, string type, string? hfIn = null)
    {
        var tensors = GemmaScope2Files.RandomParams(dModel, dModel, DSae, seed, skip, encScale: 1.5f, decScale: 0.8f);
        var folder = Directory.CreateDirectory(_dir.File($"w-{seed}")).FullName;
        var path = Path.Combine(folder, "params.safetensors");
        TestSafeTensors.WriteF32(path, tensors);

        if (hfIn is null)
        {
            return path;
        }

        var hfOut = type == "sae" ? hfIn : $"model.layers.{Layer}.post_feedforward_layernorm.output";
        File.WriteAllText(Path.Combine(folder, "config.json"), GemmaScope2Files.Config(type, DSae, l0: 10, affine: skip, hfIn, hfOut));
        return folder;
    }

    /// <summary>The tiny Gemma 2 built on <paramref name="engine"/>, a random transcoder of layer <see cref="Layer"/> and ids (seeded with <paramref name="seed"/> + 1).</summary>
    private Setup Open(GemmaEngineKind engine, int seed, bool skip, int tokens)
    {
        var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));
        return new Setup(model, Random(model.Width(Output), seed, skip), TokenIds.Random(tokens, seed + 1));
    }

    [Theory]
    [OnEngines]
    public void CaptureGivesBothSitesAndTheSpliceReplacesMlpOutByThePrediction(GemmaEngineKind engine)
    {
        using var setup = Open(engine, seed: 70, skip: true, tokens: 7);
        var (model, tc, ids) = setup;
        var clean = model.Run(ids, capture: [Input, Output]);
        Assert.Equal((tc.InputSize, tc.OutputSize), (clean.Width(Input), clean.Width(Output)));

        var splice = new TranscoderSplice(tc);
        Assert.Equal((Input, Output), (splice.Input, splice.Output));
        var run = model.Run(ids, capture: [Input, Output], interventions: splice.ToInterventions());

        // The Input site is read, not edited; the Output site becomes the transcoder's prediction (position 0 excluded).
        Assert.Equal(clean.Activations(Input).ToArray(), run.Activations(Input).ToArray());
        var x = run.Activations(Input).ToArray();
        var expected = tc.Reconstruct(x);
        var edited = run.EditedActivations(Output).ToArray();
        int w = tc.OutputSize;
        Assert.Equal(clean.Activations(Output)[..w].ToArray(), edited[..w]);
        for (int k = w; k < edited.Length; k++)
        {
            Assert.Equal(expected[k], edited[k], 5);
        }

        Assert.Contains(Enumerable.Range(w, edited.Length - w), k => Math.Abs(edited[k] - clean.Activations(Output)[k]) > 1e-3);
        var cleanLogits = clean.Logits().ToArray();
        var splicedLogits = run.Logits().ToArray();
        Assert.Contains(Enumerable.Range(0, cleanLogits.Length), k => Math.Abs(cleanLogits[k] - splicedLogits[k]) > 1e-3);
    }

    [Theory]
    [OnEngines]
    public void ExcludeBosOffSplicesPositionZeroAndATranscoderIsNeverSplicedAsAnSae(GemmaEngineKind engine)
    {
        using var setup = Open(engine, seed: 72, skip: false, tokens: 5);
        var (model, tc, ids) = setup;

        // The option SaeSplice names ExcludeBos: off, position 0 (BOS) is replaced too.
        var splice = new TranscoderSplice(tc) { ExcludeBos = false };
        var run = model.Run(ids, capture: [Input, Output], interventions: splice.ToInterventions());
        var expected = tc.Reconstruct(run.Activations(Input).ToArray());
        var edited = run.EditedActivations(Output).ToArray();
        for (int k = 0; k < tc.OutputSize; k++)
        {
            Assert.Equal(expected[k], edited[k], 5);
        }

        // A transcoder is an SAE for encoding, but splicing it as one would write its prediction at its Input site.
        Assert.Throws<ArgumentException>(() => SaeTensors.From(tc));
        Assert.Throws<ArgumentException>(() => new SaeSplice(tc));
    }

    [Theory]
    [OnEngines]
    public void ErrorTermKeepsTheForwardAndClampsMoveAlongTheDecoderDirection(GemmaEngineKind engine)
    {
        using var setup = Open(engine, seed: 72, skip: false, tokens: 6);
        var (model, tc, ids) = setup;
        var clean = model.Run(ids, capture: [Input, Output]);

        var withError = model.Run(ids, capture: [Output], interventions: new TranscoderSplice(tc) { UseErrorTerm = true }.ToInterventions());
        var a = clean.Logits().ToArray();
        var b = withError.Logits().ToArray();
        for (int k = 0; k < a.Length; k++)
        {
            Assert.Equal(a[k], b[k], 4);
        }

        const int feature = 3;
        const float value = 5f;
        var clamped = model.Run(ids, capture: [Output], interventions: new TranscoderSplice(tc) { UseErrorTerm = true, Clamp = [new(feature, value)] }.ToInterventions());
        var f = tc.Encode(clean.Activations(Input));
        var dir = tc.GetDecoderDirection(feature);
        var real = clean.Activations(Output);
        var edited = clamped.EditedActivations(Output);
        int w = tc.OutputSize;
        for (int t = 1; t < ids.Length; t++)
        {
            float delta = value - f[(t * DSae) + feature];
            for (int i = 0; i < w; i++)
            {
                Assert.Equal(real[(t * w) + i] + (delta * dir[i]), edited[(t * w) + i], 4);
            }
        }
    }

    [Theory]
    [OnEngines]
    public void SteeringByATranscoderDirectionAddsItAtTheOutputSite(GemmaEngineKind engine)
    {
        using var setup = Open(engine, seed: 74, skip: false, tokens: 5);
        var (model, tc, ids) = setup;
        var steer = Steering.Feature(tc, 9, 3f);
        Assert.Equal(Output, steer.Site);
        var run = model.Run(ids, capture: [Output], interventions: new Interventions { Steer = [steer] });
        var dir = tc.GetDecoderDirection(9);
        var before = run.Activations(Output);
        var after = run.EditedActivations(Output);
        for (int k = 0; k < after.Length; k++)
        {
            Assert.Equal(before[k] + (3f * dir[k % dir.Length]), after[k], 4);
        }

        // Its Output site, not another one of the same width.
        var e = Assert.Throws<ArgumentException>(() => model.Run(ids, interventions: new Interventions { Steer = [Steering.Feature(HookPoint.MlpOut(0), tc, 9, 3f)] }));
        Assert.Contains(Output.Name, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void GemmaScope2FilesSpliceOnTinyGemma3(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma3Checkpoint("text"), EngineData.Options(engine));
        var input = HookPoint.MlpIn(Layer);
        var output = HookPoint.MlpOut(Layer);
        int d = model.Width(output);
        using var tc = JumpReLUTranscoder.Load(Write(d, seed: 80, skip: true, "transcoder", $"model.layers.{Layer}.pre_feedforward_layernorm.output"));
        Assert.Equal((input.Name, output.Name), (tc.InputHookName, tc.OutputHookName));
        Assert.True(tc.HasSkipConnection);
        var ids = TokenIds.Random(6, seed: 81);
        var clean = model.Run(ids, capture: [input, output]);
        Assert.Equal(d, clean.Width(input));

        var run = model.Run(ids, capture: [input, output], interventions: new TranscoderSplice(tc).ToInterventions());
        var expected = tc.Reconstruct(clean.Activations(input));
        var edited = run.EditedActivations(output).ToArray();
        for (int k = d; k < edited.Length; k++)
        {
            Assert.Equal(expected[k], edited[k], 4);
        }

        var same = model.Run(ids, interventions: new TranscoderSplice(tc) { UseErrorTerm = true }.ToInterventions()).Logits().ToArray();
        var cleanLogits = clean.Logits().ToArray();
        for (int k = 0; k < same.Length; k++)
        {
            Assert.Equal(cleanLogits[k], same[k], 3);
        }

        // A Gemma Scope 2 SAE (resid_post) from its folder splices at the site its config.json names.
        using var sae = JumpReLUSae.Load(Write(d, seed: 82, skip: false, "sae", $"model.layers.{Layer}.output"));
        Assert.Equal(HookPoint.ResidPost(Layer), HookPoint.Of(sae));
        var spliced = model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(sae)] }).Logits().ToArray();
        Assert.Contains(Enumerable.Range(0, spliced.Length), k => Math.Abs(spliced[k] - cleanLogits[k]) > 1e-3);
    }

    private sealed record Setup(GemmaModel Model, JumpReLUTranscoder Transcoder, int[] Ids) : IDisposable
    {
        public void Dispose()
        {
            Transcoder.Dispose();
            Model.Dispose();
        }
    }
}
