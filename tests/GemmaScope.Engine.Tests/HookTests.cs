namespace GemmaScope.Engine.Tests;

/// <summary>Edits made in <see cref="IForwardHooks.OnHook"/> flow downstream exactly as in the float64 reference; early stop; bad requests.</summary>
public class HookTests
{
    private const double Tol = 2e-5;

    [Fact]
    public void EditsAtEveryKindOfSiteFlowDownstreamLikeTheReference()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single"), new GemmaEngineOptions { Threads = 2 });
        var ids = TokenIds.Random(10, seed: 21);

        // the same deterministic edits on both sides: (hook name, element index) → new value
        static double Edited(string name, int i, double v) => name switch
        {
            "blocks.0.attn.hook_rot_k" => v * 1.5,
            "blocks.0.ln1.hook_scale" => v * (1 + (0.1 * (i % 3))),
            "blocks.1.attn.hook_v" => i % 7 == 0 ? 0 : v,
            "blocks.1.attn.hook_attn_scores" => double.IsNegativeInfinity(v) ? v : v + (0.05 * (i % 5)),
            "blocks.2.attn.hook_pattern" => v * 0.8,
            "blocks.2.attn.hook_q" => -v,
            "blocks.3.ln2.hook_normalized" => v * 1.1,
            "blocks.3.hook_resid_mid" => v + 0.25,
            "ln_final.hook_normalized" => v * 0.9,
            _ => v,
        };

        var expected = TinyModels.Gemma2Reference.Forward(ids, (name, x, t) =>
        {
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = Edited(name, i, x[i]);
            }
        });
        var hooks = new RecordingHooks(_ => true, (HookPoint p, in HookSite site, Span<float> rows) =>
        {
            for (int i = 0; i < rows.Length; i++)
            {
                rows[i] = (float)Edited(p.Name, i, rows[i]);
            }
        });
        var result = engine.Forward(new ForwardRequest { Sequences = [ids], Logits = LogitsMode.AllRows, Hooks = hooks });
        foreach (var (name, (rows, width, _)) in hooks.Seen)
        {
            Approx.Close(rows, expected.Hooks[name], Tol, $"edited {name}", width);
        }

        Approx.Close(result.Logits, expected.Logits, Tol, "edited logits", engine.Architecture.Vocab);
        var plain = TinyModels.Gemma2Reference.Forward(ids).Logits;
        Assert.True(plain.Zip(expected.Logits).Max(p => Math.Abs(p.First - p.Second)) > 1e-2, "the edits must change the logits");
    }

    [Fact]
    public void OnlyWantedPointsAreCalledAndSitesDescribeThePackedRows()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single"));
        var seqs = new[] { TokenIds.Random(4, 1), TokenIds.Random(2, 2), TokenIds.Random(5, 3) };
        HookSite? seen = null;
        var hooks = new RecordingHooks(p => p == HookPoint.ResidPost(2) || p == HookPoint.Ln2Scale(1), (HookPoint p, in HookSite site, Span<float> rows) => seen = site);
        engine.Forward(new ForwardRequest { Sequences = seqs, Hooks = hooks, Logits = LogitsMode.None });
        Assert.Equal(["blocks.1.ln2.hook_scale", "blocks.2.hook_resid_post"], hooks.Order.Select(p => p.Name));
        var site = seen!.Value;
        Assert.Equal(3, site.SequenceCount);
        Assert.Equal(11, site.TotalRows);
        Assert.Equal(48, site.Width);
        Assert.Equal([0, 4, 6], Enumerable.Range(0, 3).Select(site.RowStart));
        Assert.Equal([4, 2, 5], Enumerable.Range(0, 3).Select(site.RowCount));
        Assert.Equal(1, site.Sequence(5));
        Assert.Equal(1, site.Position(5));
        Assert.Equal(seqs[2][3], site.TokenId(9));
        Assert.Equal(3, site.Position(9));
    }

    [Fact]
    public void StopAfterLayerRunsTheBlocksUpToItBitIdentically()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma3Checkpoint("text"));
        var ids = TokenIds.Random(9, 4);
        var full = RecordingHooks.All();
        engine.Forward(new ForwardRequest { Sequences = [ids], Hooks = full, Logits = LogitsMode.AllRows });
        var part = RecordingHooks.All();
        var r = engine.Forward(new ForwardRequest { Sequences = [ids], Hooks = part, Logits = LogitsMode.None, StopAfterLayer = 2 });
        Assert.Null(r.Logits);
        Assert.Equal("blocks.2.hook_resid_post", part.Order[^1].Name);
        Assert.All(part.Order, p => Assert.True(p.Layer <= 2 && !p.IsFinal));
        foreach (var (name, (rows, _, _)) in part.Seen)
        {
            Assert.Equal(full.Seen[name].Rows, rows);
        }
    }

    [Fact]
    public void LastRowLogitsEqualTheLastRowsOfAllRows()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("sharded"));
        var seqs = new[] { TokenIds.Random(4, 1), TokenIds.Random(7, 2) };
        var all = engine.Forward(new ForwardRequest { Sequences = seqs, Logits = LogitsMode.AllRows });
        var last = engine.Forward(new ForwardRequest { Sequences = seqs, Logits = LogitsMode.LastRow });
        Assert.Equal(2 * 256, last.Logits!.Length);
        for (int s = 0; s < 2; s++)
        {
            Assert.Equal(all.LastLogits(s).ToArray(), last.SequenceLogits(s).ToArray());
        }

        var none = engine.Forward(new ForwardRequest { Sequences = seqs, Logits = LogitsMode.None });
        Assert.Null(none.Logits);
        Assert.Throws<InvalidOperationException>(() => none.SequenceLogits(0));
    }

    [Fact]
    public void BadRequestsAreRefusedWithTheReason()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single"));
        var ok = TokenIds.Random(3, 1);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => engine.Forward(ForwardRequest.For(ok, []))).Message);
        Assert.Contains("256", Assert.Throws<ArgumentException>(() => engine.Forward(ForwardRequest.For([2, 256]))).Message);
        Assert.Contains("-1", Assert.Throws<ArgumentException>(() => engine.Forward(ForwardRequest.For([2, -1]))).Message);
        Assert.Throws<ArgumentException>(() => engine.Forward(new ForwardRequest { Sequences = [] }));
        Assert.Contains("LogitsMode.None", Assert.Throws<ArgumentException>(() => engine.Forward(new ForwardRequest { Sequences = [ok], StopAfterLayer = 1 })).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Forward(new ForwardRequest { Sequences = [ok], StopAfterLayer = 4, Logits = LogitsMode.None }));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.Width(HookPoint.ResidPost(4)));
        Assert.Equal(1, engine.Width(HookPoint.LnFinalScale));
        Assert.Equal(2 * 16, engine.Width(HookPoint.AttnRotK(0)));
    }
}
