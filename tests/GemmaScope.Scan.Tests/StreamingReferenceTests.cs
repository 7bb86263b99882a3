using GemmaScope.Onnx;

namespace GemmaScope.Scan.Tests;

/// <summary>
/// The scan's statistics against a brute-force float64 reference that keeps every activation: contexts rebuilt here from
/// the documented rule, the model run on the same fixed batches, each context encoded on its own, then density, mean,
/// max, the fine histogram, top-k (value desc, corpus position asc), the quantile sample and the logit lens recomputed.
/// </summary>
[Collection("scan")]
public sealed class StreamingReferenceTests(ScanFixture fx)
{
    private sealed record Event(int Feature, float Value, long Global, int Context, int Position);

    [Fact]
    public void Every_feature_matches_a_brute_force_reference()
    {
        var options = ScanFixture.SmallOptions;
        var saes = fx.Saes();
        var outDir = fx.NewDir("reference");
        var result = new FeatureScan(fx.Model, saes, new TextCorpus([fx.Corpus]), options).Run(outDir);
        var features = TestTables.Features(outDir);
        var examples = TestTables.Examples(outDir);

        // Contexts: documents' ids (no BOS) joined with BOS, cut into ContextLength − 1, BOS prefixed; batches of BatchSize.
        int bos = fx.Tokenizer.BeginningOfSentenceId, eos = fx.Tokenizer.EndOfSentenceId, pad = fx.Tokenizer.PaddingId;
        var stream = new List<int>();
        foreach (var line in File.ReadLines(fx.Corpus).Where(l => l.Length > 0))
        {
            var ids = fx.Tokenizer.EncodeToIdArray(line, addSpecialTokens: false);
            if (ids.Length == 0)
            {
                continue;
            }

            if (stream.Count > 0)
            {
                stream.Add(bos);
            }

            stream.AddRange(ids);
        }

        int body = options.ContextLength - 1;
        var contexts = new List<int[]>();
        for (int i = 0; i < stream.Count; i += body)
        {
            contexts.Add([bos, .. stream.Skip(i).Take(body)]);
        }

        var events = saes.Select(_ => new List<Event>()).ToArray();
        var perToken = saes.Select(_ => new Dictionary<(int Context, int Position, int Feature), float>()).ToArray();
        long counted = 0;
        for (int b = 0; b * options.BatchSize < contexts.Count; b++)
        {
            var batch = contexts.Skip(b * options.BatchSize).Take(options.BatchSize).ToArray();
            var run = fx.Model.RunBatch(batch, capture: [.. saes.Select(s => s.Hook).Distinct()], logits: false);
            for (int s = 0; s < batch.Length; s++)
            {
                int c = (b * options.BatchSize) + s;
                counted += batch[s].Count(id => id != bos && id != eos && id != pad);
                var encoders = new[] { fx.Sae, fx.Random };
                for (int si = 0; si < saes.Length; si++)
                {
                    var sparse = encoders[si].EncodeSparse(run.Activations(saes[si].Hook, s));
                    for (int t = 0; t < batch[s].Length; t++)
                    {
                        if (batch[s][t] == bos || batch[s][t] == eos || batch[s][t] == pad)
                        {
                            continue;
                        }

                        var tf = sparse[t];
                        for (int j = 0; j < tf.Count; j++)
                        {
                            events[si].Add(new Event(tf.Indices[j], tf.Values[j], ((long)c * options.ContextLength) + t, c, t));
                            perToken[si][(c, t, tf.Indices[j])] = tf.Values[j];
                        }
                    }
                }
            }
        }

        Assert.Equal(counted, result.TokensCounted);
        var unembed = fx.Model.ReadUnembedding();
        int live = 0;
        for (int si = 0; si < saes.Length; si++)
        {
            var byFeature = events[si].GroupBy(e => e.Feature).ToDictionary(g => g.Key, g => g.ToList());
            var saeRows = features.Where(r => r.Sae == saes[si].Name).OrderBy(r => r.Feature).ToList();
            Assert.Equal(saes[si].FeatureCount, saeRows.Count);
            foreach (var row in saeRows)
            {
                var ev = byFeature.GetValueOrDefault(row.Feature) ?? [];
                Assert.Equal(ev.Count, row.FireCount);
                Assert.Equal(counted, row.Tokens);
                Assert.Equal((double)ev.Count / counted, row.Density);
                Assert.Equal(ev.Count == 0, row.Dead);
                if (ev.Count == 0)
                {
                    Assert.Equal(0, row.Max);
                    Assert.Equal(0, row.FineHist.Sum());
                    continue;
                }

                live++;
                double sum = ev.Sum(e => (double)e.Value);
                Assert.Equal(sum / ev.Count, row.MeanActive, 1e-9 * Math.Max(1, Math.Abs(sum / ev.Count)));
                Assert.Equal(sum / counted, row.Mean, 1e-9 * Math.Max(1, Math.Abs(sum / counted)));
                Assert.Equal(ev.Max(e => e.Value), row.Max);

                var fine = new long[450];
                foreach (var e in ev)
                {
                    fine[ReferenceBucket(e.Value)]++;
                }

                Assert.Equal(fine, row.FineHist);
                Assert.Equal(ev.Count, row.HistCounts.Sum());
                Assert.Equal(options.HistogramBins, row.HistCounts.Length);

                // Top-k: value desc, corpus position asc.
                var top = ev.OrderByDescending(e => e.Value).ThenBy(e => e.Global).Take(options.TopK).ToList();
                var gotTop = examples.Where(x => x.Sae == saes[si].Name && x.Feature == row.Feature && x.Kind == "top").OrderBy(x => x.Rank).ToList();
                Assert.Equal(top.Count, gotTop.Count);
                for (int i = 0; i < top.Count; i++)
                {
                    Assert.Equal(top[i].Value, gotTop[i].Value);
                    Assert.Equal(top[i].Context, gotTop[i].Context);
                    Assert.Equal(top[i].Position, gotTop[i].Position);
                    AssertWindow(contexts[top[i].Context], top[i], gotTop[i], perToken[si], row.Feature, options, bos, eos, pad);
                }

                // Quantile groups: the bottom-s by an independent SplitMix64 priority, sorted by value, cut by rank.
                int s = options.QuantileGroups * options.ExamplesPerGroup;
                var sample = ev.OrderBy(e => Priority(options.SampleSeed, row.Feature, e.Global)).ThenBy(e => e.Global).Take(s)
                    .OrderBy(e => e.Value).ThenBy(e => e.Global).ToList();
                var gotQ = examples.Where(x => x.Sae == saes[si].Name && x.Feature == row.Feature && x.Kind == "quantile").OrderBy(x => x.QuantileGroup).ThenBy(x => x.Rank).ToList();
                Assert.Equal(sample.Count, gotQ.Count);
                for (int i = 0; i < sample.Count; i++)
                {
                    string at = $"{saes[si].Name} feature {row.Feature} sample {i} of {sample.Count}";
                    Assert.True(sample[i].Value == gotQ[i].Value, $"{at}: value {gotQ[i].Value}, expected {sample[i].Value}");
                    Assert.True(sample[i].Global == (gotQ[i].Context * options.ContextLength) + gotQ[i].Position, $"{at}: position");
                    // Group g holds ranks [⌊g·n/G⌋, ⌊(g+1)·n/G⌋).
                    int group = Enumerable.Range(0, options.QuantileGroups).Single(g => g * sample.Count / options.QuantileGroups <= i && i < (g + 1) * sample.Count / options.QuantileGroups);
                    Assert.True(group == gotQ[i].QuantileGroup, $"{at}: group {gotQ[i].QuantileGroup}, expected {group}");
                }

                // Logit lens in float64: W_dec row → RMSNorm (1 + w) → embedding.
                var dir = (si == 0 ? fx.Sae : fx.Random).GetDecoderDirection(row.Feature);
                double ms = dir.Sum(x => (double)x * x) / dir.Length;
                var normed = dir.Select((x, i) => x / Math.Sqrt(ms + unembed.RmsNormEpsilon) * (1 + (double)unembed.FinalNormWeight[i])).ToArray();
                var logits = Enumerable.Range(0, unembed.VocabSize).Select(v => (Id: v, L: Enumerable.Range(0, unembed.ModelWidth).Sum(i => (double)unembed.Embedding[(v * unembed.ModelWidth) + i] * normed[i]))).ToList();
                var refTop = logits.OrderByDescending(x => x.L).ThenBy(x => x.Id).Take(options.LogitLensTokens).ToList();
                var refBottom = logits.OrderBy(x => x.L).ThenBy(x => x.Id).Take(options.LogitLensTokens).ToList();
                Assert.Equal(refTop.Select(x => x.Id), row.TopLogitIds);
                Assert.Equal(refBottom.Select(x => x.Id), row.BottomLogitIds);
                for (int i = 0; i < refTop.Count; i++)
                {
                    Assert.Equal(refTop[i].L, row.TopLogitValues[i], 1e-4 * Math.Max(1, Math.Abs(refTop[i].L)));
                    Assert.Equal(refBottom[i].L, row.BottomLogitValues[i], 1e-4 * Math.Max(1, Math.Abs(refBottom[i].L)));
                }

                Assert.Equal(row.TopLogitIds.Select(id => fx.Tokenizer.IdToToken(id).Replace('\u2581', ' ')), row.TopLogitTokens);
            }
        }

        Assert.True(live > 20, $"only {live} live features: the corpus does not exercise the scan");
        Assert.Equal(result.DeadFeatures.Sum(), features.Count(f => f.Dead));
    }

    private static void AssertWindow(int[] ctx, Event e, ExampleRecord got, Dictionary<(int, int, int), float> perToken, int feature, ScanOptions o, int bos, int eos, int pad)
    {
        int start = Math.Max(0, Math.Min(e.Position - (o.ExampleWindow * 3 / 4), ctx.Length - o.ExampleWindow));
        int n = Math.Min(o.ExampleWindow, ctx.Length - start);
        Assert.Equal(start, got.WindowStart);
        Assert.Equal(ctx.Skip(start).Take(n), got.TokenIds);
        for (int i = 0; i < n; i++)
        {
            int id = ctx[start + i];
            float expected = id == bos || id == eos || id == pad ? 0 : perToken.GetValueOrDefault((e.Context, start + i, feature));
            Assert.Equal(expected, got.Values[i]);
        }
    }

    // Written from the definition with ILogB/ScaleB (not from the float's bits as the scan does).
    private static int ReferenceBucket(float value)
    {
        double v = value;
        if (v < Math.ScaleB(1, -10))
        {
            return 0;
        }

        if (v >= Math.ScaleB(1, 18))
        {
            return 449;
        }

        int e = Math.ILogB(v);
        int m = (int)Math.Floor((Math.ScaleB(v, -e) - 1) * 16);
        return 1 + ((e + 10) * 16) + m;
    }

    private static ulong Priority(ulong seed, int feature, long global)
    {
        ulong z = unchecked(seed + ((ulong)global * 0x9E3779B97F4A7C15UL) + ((ulong)(uint)feature * 0xC2B2AE3D27D4EB4FUL));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
