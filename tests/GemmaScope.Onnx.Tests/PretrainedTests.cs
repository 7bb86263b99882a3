using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>GemmaModel.FromPretrained on the tiny Gemma 2 in Hugging Face's layout (tools/onnx-fixtures/make_tiny_hf_checkpoints.py).</summary>
public class PretrainedTests
{
    private const double Tol = 2e-5;

    private static Gemma2Reference ReferenceFor(string layout) => layout == "bf16" ? TinyModels.Gemma2Bf16Reference : TinyModels.Gemma2Reference;

    [Theory]
    [OnEngines("single")]
    [OnEngines("sharded")]
    [OnEngines("bf16")]
    public void EveryHookOfEveryLayerAndTheLogitsEqualTheFloat64Reference(string layout, GemmaEngineKind engine)
    {
        var reference = ReferenceFor(layout);
        var ids = TokenIds.Random(11, seed: 7); // longer than the sliding window (4)
        var expected = reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint(layout), EngineData.Options(engine));
        Assert.Equal(reference.Layers, model.LayerCount);
        var sites = TestData.AllSites(model.LayerCount, withLn2: true).Append(HookPoint.LnFinalNormalized).ToArray();
        Assert.All(sites, site => Assert.Equal(site.Name, model.TensorName(site))); // resolved by name, no heuristics

        var run = TestData.AssertRunMatches(model, ids, expected, sites, Tol, layout);

        Assert.Equal(reference.Heads * reference.HeadDim, run.Width(HookPoint.AttnZ(0)));
    }

    [Theory]
    [OnEngines]
    public void TheBf16CheckpointDiffersFromTheFloat32OneByTheRounding(GemmaEngineKind engine)
    {
        // guards the bf16 test above: the rounded reference must differ measurably from the float32 one
        var ids = TokenIds.Random(11, seed: 7);
        var f32 = TinyModels.Gemma2Reference.Forward(ids).Logits;
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("bf16"), EngineData.Options(engine));
        var logits = model.Run(ids).Logits().ToArray();
        double worst = 0;
        for (int i = 0; i < f32.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(logits[i] - f32[i]));
        }

        Assert.True(worst > 1e-3, $"bf16 logits within {worst} of the float32 ones: the bf16 weights were not used");
    }

    [Theory]
    [OnEngines("single")]
    [OnEngines("sharded")]
    public void TheBuiltGraphAndTheTorchOnnxExportAgreeOnEveryHook(string layout, GemmaEngineKind engine)
    {
        // two independent paths from the same weights: our builder and torch.onnx's export of the PyTorch module
        var ids = TokenIds.Random(13, seed: 17);
        using var built = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint(layout), EngineData.Options(engine));
        using var exported = GemmaModel.Load(TestData.ModelPath("torch"));
        var sites = TestData.AllSites(built.LayerCount).ToArray();
        var a = built.Run(ids, capture: sites);
        var b = exported.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            var expected = Approx.Widen(b.Activations(site));
            Approx.Close(a.Activations(site), expected, Tol, $"{layout} vs torch.onnx {site.Name}");
        }

        Approx.Close(a.Logits(), Approx.Widen(b.Logits()), Tol, $"{layout} vs torch.onnx logits");
    }

    [Theory]
    [OnEngines]
    public void TheTokenizerBesideTheCheckpointIsLoaded(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));
        Assert.NotNull(model.Tokenizer);
        var run = model.Run("hello world");
        Assert.Equal(2, run.Ids()[0]);
        Assert.NotNull(run.Tokens());
    }

    [Theory]
    [OnEngines("gemma2", 1)]
    [OnEngines("gemma2", 3)]
    [OnEngines("gemma2", 40)]
    [OnEngines("gemma3", 1)]
    [OnEngines("gemma3", 9)]
    [OnEngines("gemma3", 30)]
    public void InputsPastTheSlidingWindowMatchTheReferenceOnLocalAndGlobalLayers(string checkpoint, int extra, GemmaEngineKind engine)
    {
        // Gemma 2 alternates local and global layers; the tiny Gemma 3 has five local layers, one global (5), one local
        var (reference, folder, seed, sites) = checkpoint == "gemma2"
            ? (TinyModels.Gemma2Reference, TinyModels.Gemma2Checkpoint("single"), 100, (HookPoint[])[HookPoint.AttnZ(0), HookPoint.AttnZ(1), HookPoint.ResidPost(3)])
            : (TinyModels.Gemma3Reference, TinyModels.Gemma3Checkpoint("text"), 300, [HookPoint.AttnZ(0), HookPoint.AttnZ(5), HookPoint.AttnZ(6), HookPoint.MlpIn(5), HookPoint.ResidPost(6)]);
        var ids = TokenIds.Random(reference.Window + extra, seed: seed + extra);
        using var model = GemmaModel.FromPretrained(folder, EngineData.Options(engine));
        TestData.AssertRunMatches(model, ids, reference.Forward(ids), sites, Tol, $"{checkpoint} window + {extra}:");
    }
}

/// <summary>Running without logits stops the graph after the last layer needed (TransformerLens's stop_at_layer).</summary>
public class StopAtLayerTests
{
    [Theory]
    [InlineData("single")]
    [InlineData("torch")] // the same pruning works on a loaded ONNX export
    public void ACaptureWithoutLogitsEqualsTheFullRunAndSkipsLaterLayersAndTheLmHead(string layout)
    {
        using var model = layout == "torch" ? GemmaModel.Load(TestData.ModelPath("torch")) : GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint(layout), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var ids = TokenIds.Random(9, seed: 21);
        HookPoint[] sites = [HookPoint.ResidPost(1), HookPoint.AttnZ(1), HookPoint.MlpOut(0)];
        var full = model.Run(ids, capture: sites);
        var stopped = model.Run(ids, capture: sites, logits: false);
        foreach (var site in sites)
        {
            Assert.Equal(full.Activations(site).ToArray(), stopped.Activations(site).ToArray());
        }

        Assert.False(stopped.HasLogits);
        Assert.True(full.HasLogits);
        Assert.Throws<InvalidOperationException>(() => stopped.Logits());
        Assert.Throws<InvalidOperationException>(() => stopped.Loss());

        var nodes = model.CaptureGraphNodes(sites, logits: false);
        var withLogits = model.CaptureGraphNodes(sites, logits: true);
        Assert.Contains(withLogits, n => n.StartsWith("/lm_head/", StringComparison.Ordinal));
        Assert.Contains(withLogits, n => n.StartsWith("/model/layers.3/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/lm_head/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/model/layers.2/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/model/layers.3/", StringComparison.Ordinal));
        Assert.Contains(nodes, n => n.StartsWith("/model/layers.1/", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => model.Run(ids, logits: false));
    }

    [Theory]
    [OnEngines]
    public void SplicesAndCallbacksWorkWithoutLogits(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));
        var ids = TokenIds.Random(8, seed: 22);
        var site = HookPoint.ResidPost(1);
        var sae = TestSaes.Random(model.Width(site), 24, seed: 23);
        var iv = new Interventions
        {
            Splice = [new SaeSplice(site, sae) { CaptureFeatures = true }],
            Hooks = [new ActivationHook(HookPoint.ResidPost(0), (x, tokens, width) => x[..width].Clear())],
        };
        var full = model.Run(ids, capture: [HookPoint.ResidPost(2)], interventions: iv);
        var stopped = model.Run(ids, capture: [HookPoint.ResidPost(2)], interventions: iv, logits: false);
        Assert.Equal(full.Activations(HookPoint.ResidPost(2)).ToArray(), stopped.Activations(HookPoint.ResidPost(2)).ToArray());
        Assert.Equal(full.Features(site).ToArray(), stopped.Features(site).ToArray());
    }
}

/// <summary>A huggingface_hub cache keeps shards as symlinks into blobs/: ONNX Runtime must still accept the weights.</summary>
public sealed class SymlinkedCheckpointTests : IDisposable
{
    private readonly TempDir _root = new();

    public void Dispose() => _root.Dispose();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ACheckpointOfSymlinksIntoBlobsLoadsAndMatchesTheReference(bool externalData)
    {
        var binding = externalData ? Onnx.Building.WeightBinding.ExternalData : Onnx.Building.WeightBinding.Initializers;
        var snapshot = TestData.SymlinkedSnapshot(TinyModels.Gemma2Checkpoint("sharded"), _root.Path, "0123abcd");
        var ids = TokenIds.Random(9, seed: 31);
        var expected = TinyModels.Gemma2Reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(snapshot, new GemmaModelOptions { Engine = GemmaEngineKind.OnnxRuntime, WeightBinding = binding });
        var run = model.Run(ids, capture: [HookPoint.AttnZ(2)]);
        Approx.Close(run.Activations(HookPoint.AttnZ(2)), expected.Hooks["blocks.2.attn.hook_z"], 2e-5, $"{binding} z");
        Approx.Close(run.Logits(), expected.Logits, 2e-5, $"{binding} logits");
    }
}
