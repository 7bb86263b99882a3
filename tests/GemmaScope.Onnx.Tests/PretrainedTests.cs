using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>GemmaModel.FromPretrained on the tiny Gemma 2 in Hugging Face's layout (tools/onnx-fixtures/make_tiny_hf_checkpoints.py).</summary>
public class PretrainedTests
{
    private const double Tol = 2e-5;

    private static Gemma2Reference ReferenceFor(string layout) => layout == "bf16" ? TestData.Bf16Reference : TestData.Reference;

    [Theory]
    [OnEngines("single")]
    [OnEngines("sharded")]
    [OnEngines("bf16")]
    public void EveryHookOfEveryLayerAndTheLogitsEqualTheFloat64Reference(string layout, GemmaEngineKind engine)
    {
        var reference = ReferenceFor(layout);
        var ids = TestData.RandomIds(11, seed: 7); // longer than the sliding window (4)
        var expected = reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir(layout), EngineData.Options(engine));
        Assert.Equal(reference.Layers, model.LayerCount);
        var sites = TestData.AllSites(model.LayerCount, withLn2: true).Append(HookPoint.LnFinalNormalized).ToArray();

        var run = model.Run(ids, capture: sites);

        foreach (var site in sites)
        {
            Assert.Equal(site.Name, model.TensorName(site)); // resolved by name, no heuristics
            TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], Tol, $"{layout} {site.Name}");
        }

        Assert.Equal(reference.Heads * reference.HeadDim, run.Width(HookPoint.AttnZ(0)));
        TestData.AssertClose(run.Logits(), expected.Logits, Tol, $"{layout} logits");
    }

    [Theory]
    [OnEngines]
    public void TheBf16CheckpointDiffersFromTheFloat32OneByTheRounding(GemmaEngineKind engine)
    {
        // guards the bf16 test above: the rounded reference must differ measurably from the float32 one
        var ids = TestData.RandomIds(11, seed: 7);
        var f32 = TestData.Reference.Forward(ids).Logits;
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("bf16"), EngineData.Options(engine));
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
        var ids = TestData.RandomIds(13, seed: 17);
        using var built = GemmaModel.FromPretrained(TestData.CheckpointDir(layout), EngineData.Options(engine));
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

    [Theory]
    [OnEngines]
    public void PaddedBatchGivesEachSequenceItsUnpaddedResult(GemmaEngineKind engine)
    {
        var reference = TestData.Reference;
        int[][] seqs = [TestData.RandomIds(12, seed: 1), TestData.RandomIds(5, seed: 2), TestData.RandomIds(9, seed: 3)];
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"), EngineData.Options(engine));
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
    [OnEngines(1)]
    [OnEngines(3)]
    [OnEngines(40)]
    public void InputsPastTheSlidingWindowMatchTheReference(int extra, GemmaEngineKind engine)
    {
        var reference = TestData.Reference;
        var ids = TestData.RandomIds(reference.Window + extra, seed: 100 + extra);
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"), EngineData.Options(engine));
        var expected = reference.Forward(ids);
        var run = model.Run(ids, capture: [HookPoint.AttnZ(0), HookPoint.AttnZ(1), HookPoint.ResidPost(3)]);
        foreach (var site in new[] { HookPoint.AttnZ(0), HookPoint.AttnZ(1), HookPoint.ResidPost(3) })
        {
            TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], Tol, $"window + {extra}: {site.Name}");
        }

        TestData.AssertClose(run.Logits(), expected.Logits, Tol, $"window + {extra}: logits");
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
        using var model = layout == "torch" ? GemmaModel.Load(TestData.ModelPath("torch")) : GemmaModel.FromPretrained(TestData.CheckpointDir(layout), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var ids = TestData.RandomIds(9, seed: 21);
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
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"), EngineData.Options(engine));
        var ids = TestData.RandomIds(8, seed: 22);
        var site = HookPoint.ResidPost(1);
        var sae = InterventionTests.RandomSae(model.Width(site), 24, seed: 23);
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

public class PretrainedGenerationTests
{
    [Theory]
    [OnEngines]
    public void WithKvCacheEqualsRecomputingThePrefixWithAndWithoutInterventions(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"), EngineData.Options(engine));
        var prompt = TestData.RandomIds(5, seed: 40);
        var site = HookPoint.ResidPost(1);
        var sae = InterventionTests.RandomSae(model.Width(site), 40, seed: 41);
        // 12 new tokens after 5: past the sliding window (4) with the cache too. Sampled at a high temperature so
        // that equal sequences need equal logits at every step.
        var o = new GenerationOptions { MaxNewTokens = 12, EosId = null, Temperature = 8f, Seed = 3 };
        var steer = new Interventions { Steer = [Steering.Feature(site, sae, 1, 20f)] };
        var row = SaeTensors.DecoderRow(sae, 1).ToArray();
        var callback = new Interventions
        {
            Hooks = [new ActivationHook(site, (x, tokens, width) =>
            {
                for (int i = 0; i < tokens * width; i++)
                {
                    x[i] += 20f * row[i % width];
                }
            })],
        };
        Assert.Equal(model.Generate(prompt, o, steer).NewIds, model.Generate(prompt, o, callback).NewIds);
        Assert.NotEqual(model.Generate(prompt, o).NewIds, model.Generate(prompt, o, steer).NewIds);
        foreach (var iv in new[] { Interventions.None, steer, callback, new Interventions { Splice = [new SaeSplice(site, sae)] } })
        {
            var cached = model.Generate(prompt, o, iv);
            var recomputed = model.Generate(prompt, o with { UseKvCache = false }, iv);
            Assert.True(cached.UsedKvCache);
            Assert.False(recomputed.UsedKvCache);
            Assert.True(cached.NewIds.Distinct().Count() > 3, "the sampled sequence must vary");
            Assert.Equal(recomputed.NewIds, cached.NewIds);
        }
    }

    [Theory]
    [OnEngines]
    public void GreedyGenerationWithTheCacheFollowsTheReferenceArgmax(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"), EngineData.Options(engine));
        var prompt = TestData.RandomIds(4, seed: 42);
        var result = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 8, EosId = null });
        Assert.True(result.UsedKvCache);
        var ids = prompt.ToList();
        var reference = TestData.Reference;
        for (int s = 0; s < 8; s++)
        {
            var logits = reference.Forward([.. ids]).Logits;
            int best = 0;
            for (int v = 1; v < reference.Vocab; v++)
            {
                if (logits[((ids.Count - 1) * reference.Vocab) + v] > logits[((ids.Count - 1) * reference.Vocab) + best])
                {
                    best = v;
                }
            }

            ids.Add(best);
        }

        Assert.Equal(ids.Skip(prompt.Length), result.NewIds);
    }

    [Theory]
    [OnEngines]
    public void TheTokenizerBesideTheCheckpointIsLoaded(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TestData.CheckpointDir("single"), EngineData.Options(engine));
        Assert.NotNull(model.Tokenizer);
        var run = model.Run("hello world");
        Assert.Equal(2, run.Ids()[0]);
        Assert.NotNull(run.Tokens());
    }
}

/// <summary>A huggingface_hub cache keeps shards as symlinks into blobs/: ONNX Runtime must still accept the weights.</summary>
public sealed class SymlinkedCheckpointTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "gemmascope-hubcache-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ACheckpointOfSymlinksIntoBlobsLoadsAndMatchesTheReference(bool externalData)
    {
        var binding = externalData ? Onnx.Building.WeightBinding.ExternalData : Onnx.Building.WeightBinding.Initializers;
        var snapshot = Path.Combine(_root, "snapshots", "0123abcd");
        var blobs = Path.Combine(_root, "blobs");
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(blobs);
        foreach (var f in Directory.GetFiles(TestData.CheckpointDir("sharded")))
        {
            var blob = Path.Combine(blobs, Guid.NewGuid().ToString("N"));
            File.Copy(f, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(f)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }

        var ids = TestData.RandomIds(9, seed: 31);
        var expected = TestData.Reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(snapshot, new GemmaModelOptions { Engine = GemmaEngineKind.OnnxRuntime, WeightBinding = binding });
        var run = model.Run(ids, capture: [HookPoint.AttnZ(2)]);
        TestData.AssertClose(run.Activations(HookPoint.AttnZ(2)), expected.Hooks["blocks.2.attn.hook_z"], 2e-5, $"{binding} z");
        TestData.AssertClose(run.Logits(), expected.Logits, 2e-5, $"{binding} logits");
    }
}
