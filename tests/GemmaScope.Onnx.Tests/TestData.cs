using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// What the ONNX tests add to <see cref="TinyModels"/>: the tiny Gemma 2's ONNX exports, the model by layout on either
/// engine, the hook points both engines expose, and the comparisons several test classes make.
/// </summary>
internal static class TestData
{
    /// <summary>An ONNX export of the tiny Gemma 2: "torch", "genai" or "external".</summary>
    public static string ModelPath(string layout) => Path.Combine(TinyModels.Gemma2Weights, layout, "model.onnx");

    /// <summary>
    /// The tiny Gemma 2 by layout: an ONNX export ("torch", "genai", "external") on ONNX Runtime; "built": the checkpoint
    /// folder on ONNX Runtime (the graph FromPretrained builds); "native": the same checkpoint on the native engine.
    /// </summary>
    public static GemmaModel Open(string layout) => layout switch
    {
        "built" => GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(GemmaEngineKind.OnnxRuntime)),
        "native" => GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(GemmaEngineKind.Native)),
        _ => GemmaModel.Load(ModelPath(layout)),
    };

    /// <summary>Every hook point of every layer that both engines expose; <c>ln2.hook_normalized</c>, <c>hook_mlp_in</c> and <c>hook_embed</c> only when asked (built models only).</summary>
    public static IEnumerable<HookPoint> AllSites(int layers, bool withLn2 = false)
    {
        for (int l = 0; l < layers; l++)
        {
            foreach (var kind in (HookKind[])[HookKind.ResidPre, HookKind.ResidMid, HookKind.ResidPost, HookKind.AttnOut, HookKind.MlpOut, HookKind.AttnZ, HookKind.Ln2Normalized, HookKind.MlpIn, HookKind.Embed])
            {
                // ln2.hook_normalized, hook_mlp_in and hook_embed: only asked of built models
                if ((kind is HookKind.Ln2Normalized or HookKind.MlpIn or HookKind.Embed && !withLn2) || (kind == HookKind.Embed && l > 0))
                {
                    continue;
                }

                yield return HookPoint.Create(l, kind);
            }
        }
    }

    /// <summary>
    /// The float64 reference forward of the tiny Gemma 2 on <paramref name="ids"/>, each edit applied to its site's rows
    /// (the row-major values and the token count) where the forward passes that site.
    /// </summary>
    public static Gemma2Reference.Output ReferenceWith(int[] ids, params (HookPoint Site, Action<double[], int> Edit)[] edits) =>
        TinyModels.Gemma2Reference.Forward(ids, (name, x, tokens) =>
        {
            foreach (var (site, edit) in edits)
            {
                if (site.Name == name)
                {
                    edit(x, tokens);
                }
            }
        });

    /// <summary>
    /// Runs <paramref name="ids"/> capturing <paramref name="sites"/> and asserts every site and the logits equal the float64
    /// <paramref name="expected"/> within <paramref name="tol"/> (<see cref="Approx.Close(ReadOnlySpan{float}, double[], double, string, int)"/>,
    /// the whole span one row); a failure names <paramref name="what"/> and the site. Returns the run.
    /// </summary>
    public static RunResult AssertRunMatches(GemmaModel model, int[] ids, Gemma2Reference.Output expected, HookPoint[] sites, double tol, string what)
    {
        var run = model.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            Approx.Close(run.Activations(site), expected.Hooks[site.Name], tol, $"{what} {site.Name}");
        }

        Approx.Close(run.Logits(), expected.Logits, tol, $"{what} logits");
        return run;
    }

    /// <summary>Asserts two models give bit-identical activations at <paramref name="sites"/> and logits on <paramref name="ids"/>.</summary>
    public static void AssertSameOutputs(GemmaModel expected, GemmaModel actual, int[] ids, HookPoint[] sites)
    {
        var a = expected.Run(ids, capture: sites);
        var b = actual.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            Assert.Equal(a.Activations(site).ToArray(), b.Activations(site).ToArray());
        }

        Assert.Equal(a.Logits().ToArray(), b.Logits().ToArray());
    }

    /// <summary>
    /// Asserts that generation with the KV cache gives the tokens of generation that recomputes the prefix at every step,
    /// under each set of interventions; <paramref name="options"/> should sample at a high temperature, so that equal
    /// sequences need equal logits at every step, and the sampled sequence must vary.
    /// </summary>
    public static void AssertCachedGenerationEqualsRecomputing(GemmaModel model, int[] prompt, GenerationOptions options, params Interventions[] interventions)
    {
        foreach (var iv in interventions)
        {
            var cached = model.Generate(prompt, options, iv);
            var recomputed = model.Generate(prompt, options with { UseKvCache = false }, iv);
            Assert.True(cached.UsedKvCache);
            Assert.False(recomputed.UsedKvCache);
            Assert.True(cached.NewIds.Distinct().Count() > 3, "the sampled sequence must vary");
            Assert.Equal(options.MaxNewTokens, cached.NewIds.Count);
            Assert.Equal(recomputed.NewIds, cached.NewIds);
        }
    }

    /// <summary>
    /// The checkpoint's files laid out under <paramref name="root"/> as huggingface_hub's cache does: each file in
    /// <c>blobs/</c> under a name of its own, <c>snapshots/<paramref name="commit"/>/</c> holding relative symlinks to them
    /// (<c>../../blobs/…</c>). Returns the snapshot folder.
    /// </summary>
    public static string SymlinkedSnapshot(string checkpoint, string root, string commit)
    {
        var snapshot = Path.Combine(root, "snapshots", commit);
        var blobs = Path.Combine(root, "blobs");
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(blobs);
        foreach (var file in Directory.EnumerateFiles(checkpoint))
        {
            var blob = Guid.NewGuid().ToString("N");
            File.Copy(file, Path.Combine(blobs, blob));
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", blob));
        }

        return snapshot;
    }
}
