
namespace GemmaScope.Engine.Tests;

/// <summary>
/// Every hook point of every layer, and the logits, against the plain float64 forward (Reference/Gemma2Reference.cs,
/// linked from the ONNX tests) and, for Gemma 3, the float64 PyTorch forward recorded in reference.npz.
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
        var reference = layout == "bf16" || roundToBf16 ? TestSupport.Bf16Reference : TestSupport.Reference;
        using var engine = GemmaEngine.Open(TestSupport.Gemma2(layout), new GemmaEngineOptions { RoundWeightsToBFloat16 = roundToBf16, Threads = 2 });
        var ids = TestSupport.RandomIds(11, seed: 7); // 11 > window 4: sliding layers mask
        AssertEveryHook(engine, reference, ids, $"{layout}{(roundToBf16 ? " rounded" : "")}");
    }

    [Fact]
    public void RoundingMattersSoTheBf16TestsCanTellTheReferencesApart()
    {
        var ids = TestSupport.RandomIds(11, seed: 7);
        var a = TestSupport.Reference.Forward(ids).Logits;
        var b = TestSupport.Bf16Reference.Forward(ids).Logits;
        Assert.True(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Theory]
    [InlineData("text")]
    [InlineData("multimodal")]
    public void Gemma3EveryHookOfEveryLayerAndTheLogitsEqualTheFloat64References(string layout)
    {
        using var engine = GemmaEngine.Open(TestSupport.Gemma3(layout));
        Assert.Equal(7, engine.Architecture.Layers);
        Assert.True(engine.Architecture.QkNorm);

        // the C# float64 reference records every hook point, on a sequence past the window (4)
        var cs = Gemma2Reference.FromCheckpoint(TestSupport.Gemma3("text"));
        AssertEveryHook(engine, cs, TestSupport.RandomIds(13, seed: 3), $"gemma3 {layout}");

        // PyTorch's float64 forward on the probe ids, for the hooks it recorded
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestSupport.Fixtures, "tiny-gemma3", "probe.json")));
        int[] probe = [.. doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];
        var torch = TestNpz.ReadFloat64(Path.Combine(TestSupport.Fixtures, "tiny-gemma3", "reference.npz"));
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
                TestSupport.AssertClose(result.Logits, data, engine.Architecture.Vocab, Tol, "torch logits");
            }
            else if (hooks.Seen.TryGetValue(hook, out var seen))
            {
                TestSupport.AssertClose(seen.Rows, data, seen.Width, Tol, $"torch {hook}");
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
        var cs = Gemma2Reference.FromCheckpoint(TestSupport.Gemma3("text"));
        using var engine = GemmaEngine.Open(TestSupport.Gemma3("text"), new GemmaEngineOptions { Threads = 3 });
        AssertEveryHook(engine, cs, TestSupport.RandomIds(cs.Window + extra, seed: 300 + extra), $"gemma3 window + {extra}");
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
            TestSupport.AssertClose(rows, exp, width, Tol, $"{what} {point.Name}");
        }

        Assert.NotNull(result.Logits);
        TestSupport.AssertClose(result.Logits, expected.Logits, engine.Architecture.Vocab, Tol, $"{what} logits");
        Assert.Equal(expected.Logits.Length, result.Logits!.Length);
    }
}
