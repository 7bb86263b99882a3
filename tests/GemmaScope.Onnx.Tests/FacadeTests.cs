using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>The facade's own surface: which engine runs, run_with_cache, per-head views, and what ONNX Runtime refuses.</summary>
public class FacadeTests
{
    [Fact]
    public void LoadRunsOnOnnxRuntimeAndRefusesTheNativeEngine()
    {
        using var model = GemmaModel.Load(TestData.ModelPath("torch"));
        Assert.Equal(GemmaEngineKind.OnnxRuntime, model.Engine);
        var e = Assert.Throws<NotSupportedException>(() => GemmaModel.Load(TestData.ModelPath("torch"), options: new() { Engine = GemmaEngineKind.Native }));
        Assert.Contains("FromPretrained", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CudaWithTheNativeEngineIsRefused()
    {
        var e = Assert.Throws<NotSupportedException>(() => GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"),
            new() { Engine = GemmaEngineKind.Native, ExecutionProvider = ExecutionProvider.Cuda }));
        Assert.Contains("CUDA", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(HookKind.AttnQ)]
    [InlineData(HookKind.AttnRotK)]
    [InlineData(HookKind.AttnPattern)]
    [InlineData(HookKind.Ln1Scale)]
    public void OnnxRuntimeRefusesTheNewHookKindsNamingTheNativeEngine(HookKind kind)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var site = HookPoint.Create(1, kind);
        var e = Assert.Throws<NotSupportedException>(() => model.Run(TokenIds.Random(5, seed: 1), capture: [site]));
        Assert.Contains("native engine", e.Message, StringComparison.Ordinal);
        Assert.Contains(site.Name, e.Message, StringComparison.Ordinal);
        Assert.Throws<NotSupportedException>(() => model.Run(TokenIds.Random(5, seed: 1),
            interventions: new() { Hooks = [new ActivationHook(site, (_, _, _) => { })] }));
        Assert.Throws<NotSupportedException>(() => model.Run(TokenIds.Random(5, seed: 1), capture: [HookPoint.LnFinalScale]));
    }

    [Theory]
    [MemberData(nameof(EngineData.All), MemberType = typeof(EngineData))]
    public void RunWithCacheCapturesEveryHookTheFilterAcceptsWithTheValuesOfAnExplicitCapture(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));
        var ids = TokenIds.Random(6, seed: 5);

        var run = model.RunWithCache(ids, p => p.Name.Contains("resid", StringComparison.Ordinal));

        var expectedSites = Enumerable.Range(0, model.LayerCount)
            .SelectMany(l => new[] { HookPoint.ResidPre(l), HookPoint.ResidMid(l), HookPoint.ResidPost(l) }).ToHashSet();
        Assert.Equal(expectedSites, run.Captured.ToHashSet());
        var single = model.Run(ids, capture: [HookPoint.ResidMid(1)]);
        Assert.Equal(single.Activations(HookPoint.ResidMid(1)).ToArray(), run.Activations(HookPoint.ResidMid(1)).ToArray());
        Assert.Equal(single.Logits().ToArray(), run.Logits().ToArray());
    }

    [Theory]
    [MemberData(nameof(EngineData.All), MemberType = typeof(EngineData))]
    public void RunWithCacheWithoutAFilterHasEveryHookTheEngineHas(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));

        var run = model.RunWithCache(TokenIds.Random(4, seed: 6), logits: false);

        // ONNX Runtime's built graph names 8 kinds per block (with hook_embed and ln_final.hook_normalized); the native engine has all.
        int expected = engine == GemmaEngineKind.Native ? HookPoint.All(model.LayerCount).Count : (8 * model.LayerCount) + 2;
        Assert.Equal(expected, run.Captured.Count);
        Assert.False(run.HasLogits);
    }

    [Theory]
    [MemberData(nameof(EngineData.All), MemberType = typeof(EngineData))]
    public void HeadViewsOfHookZAreTheHeadsColumnsOfItsRows(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));
        var site = HookPoint.AttnZ(1);
        var run = model.RunBatch([TokenIds.Random(5, seed: 7), TokenIds.Random(3, seed: 8)], capture: [site]);
        int headDim = TinyModels.Gemma2Reference.HeadDim, heads = TinyModels.Gemma2Reference.Heads;
        Assert.Equal(heads * headDim, run.Width(site));

        for (int s = 0; s < 2; s++)
        {
            var rows = run.Activations(site, s).ToArray();
            for (int h = 0; h < heads; h++)
            {
                var view = run.HeadActivations(site, h, s);
                Assert.Equal([run.TokenCount(s), headDim], view.Lengths.ToArray().Select(x => (int)x).ToArray());
                for (int t = 0; t < run.TokenCount(s); t++)
                {
                    for (int i = 0; i < headDim; i++)
                    {
                        Assert.Equal(rows[(t * heads * headDim) + (h * headDim) + i], view[t, i]);
                    }
                }
            }
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => run.HeadActivations(site, heads));
        Assert.Throws<ArgumentException>(() => model.Run(TokenIds.Random(3, seed: 1), capture: [HookPoint.ResidPost(0)]).HeadActivations(HookPoint.ResidPost(0), 0));
    }
}
