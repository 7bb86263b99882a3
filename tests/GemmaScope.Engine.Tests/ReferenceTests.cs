namespace GemmaScope.Engine.Tests;

/// <summary>
/// Every hook point of every layer, and the logits, against the plain float64 forward (Gemma2Reference in
/// GemmaScope.TestSupport) and, for Gemma 3, the float64 PyTorch forward recorded in reference.npz.
/// </summary>
public class ReferenceTests
{
    private const double Tol = 2e-5;

    public static TheoryData<string, bool> Gemma2Layouts => new()
    {
        { "single", false },
        { "sharded", false },
        { "bf16", false },
        { "single", true }, // fp32 held as bf16 by the explicit option: equals the reference on rounded weights
    };

    [Theory]
    [MemberData(nameof(Gemma2Layouts))]
    public void Gemma2EveryHookOfEveryLayerAndTheLogitsEqualTheFloat64Reference(string layout, bool roundToBf16)
    {
        var reference = layout == "bf16" || roundToBf16 ? TinyModels.Gemma2Bf16Reference : TinyModels.Gemma2Reference;
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint(layout), new GemmaEngineOptions { RoundWeightsToBFloat16 = roundToBf16, Threads = 2 });
        var ids = TokenIds.Random(11, seed: 7); // 11 > window 4: sliding layers mask
        AssertEveryHook(engine, reference, ids, $"{layout}{(roundToBf16 ? " rounded" : "")}");
    }

    [Fact]
    public void RoundingMattersSoTheBf16TestsCanTellTheReferencesApart()
    {
        var ids = TokenIds.Random(11, seed: 7);
        var a = TinyModels.Gemma2Reference.Forward(ids).Logits;
        var b = TinyModels.Gemma2Bf16Reference.Forward(ids).Logits;
        Assert.True(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Theory]
    [InlineData("text")]
    [InlineData("multimodal")]
    public void Gemma3EveryHookOfEveryLayerAndTheLogitsEqualTheFloat64References(string layout)
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma3Checkpoint(layout));
        Assert.Equal(7, engine.Architecture.Layers);
        Assert.True(engine.Architecture.QkNorm);

        // the C# float64 reference records every hook point, on a sequence past the window (4)
        AssertEveryHook(engine, TinyModels.Gemma3Reference, TokenIds.Random(13, seed: 3), $"gemma3 {layout}");

        // PyTorch's float64 forward on the probe ids, for the hooks it recorded
        int[] probe = TinyModels.Gemma3Probe();
        var torch = TestNpz.ReadFloat64(TinyModels.Gemma3PyTorchReference);
        var hooks = RecordingHooks.All();
        var result = engine.Forward(new ForwardRequest { Sequences = [probe], Logits = LogitsMode.AllRows, Hooks = hooks });
        int compared = 0;
        foreach (var (name, (_, data)) in torch)
        {
            // reference.npz's "ln_final/hook_normalized" holds the final norm's output with its (1 + w) gain (see
            // tools/onnx-fixtures/make_tiny_gemma3.py), not TransformerLens's x / rms(x): the logits cover it.
            string hook = name.Replace('/', '.');
            if (hook == "ln_final.hook_normalized")
            {
                continue;
            }

            if (hook == "logits")
            {
                Approx.Close(result.Logits, data, Tol, "torch logits", engine.Architecture.Vocab);
            }
            else if (hooks.Seen.TryGetValue(hook, out var seen))
            {
                Approx.Close(seen.Rows, data, Tol, $"torch {hook}", seen.Width);
            }
            else
            {
                continue;
            }

            compared++;
        }

        Assert.True(compared >= 7 * 8, $"only {compared} PyTorch tensors compared");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    [InlineData(30)]
    public void Gemma3LongInputsPastTheWindowEqualTheReference(int extra)
    {
        var cs = TinyModels.Gemma3Reference;
        using var engine = GemmaEngine.Open(TinyModels.Gemma3Checkpoint("text"), new GemmaEngineOptions { Threads = 3 });
        AssertEveryHook(engine, cs, TokenIds.Random(cs.Window + extra, seed: 300 + extra), $"gemma3 window + {extra}");
    }

    internal static void AssertEveryHook(GemmaEngine engine, Gemma2Reference reference, int[] ids, string what)
    {
        var expected = reference.Forward(ids);
        var hooks = RecordingHooks.All();
        var result = engine.Forward(new ForwardRequest { Sequences = [ids], Logits = LogitsMode.AllRows, Hooks = hooks });
        var all = HookPoint.All(engine.Architecture.Layers);
        Assert.Equal(all.Select(p => p.Name), hooks.Order.Select(p => p.Name)); // every point, once, in forward order
        foreach (var point in all)
        {
            var (rows, width, keys) = hooks.Seen[point.Name];
            if (point.Kind is HookKind.AttnScores or HookKind.AttnPattern)
            {
                Assert.Equal(-1, engine.Width(point));
                Assert.Equal(ids.Length, keys);
                Assert.Equal(engine.Architecture.Heads * ids.Length, width);
            }
            else
            {
                Assert.Equal(engine.Width(point), width);
            }

            Assert.True(expected.Hooks.TryGetValue(point.Name, out var exp), $"the reference has no {point.Name}");
            Approx.Close(rows, exp, Tol, $"{what} {point.Name}", width);
        }

        Assert.NotNull(result.Logits);
        Approx.Close(result.Logits, expected.Logits, Tol, $"{what} logits", engine.Architecture.Vocab);
        Assert.Equal(expected.Logits.Length, result.Logits!.Length);
    }
}
