namespace GemmaScope.Engine.Tests;

/// <summary>
/// A sequence's activations and logits are bit-identical whatever the thread count and whatever other sequences share
/// its call (batches of 1, 3 and 7 sequences of different lengths, packed without padding).
/// </summary>
public class DeterminismTests
{
    private static readonly int[] Lengths = [5, 1, 11, 3, 8, 2, 13];

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void RowsAreBitIdenticalAcrossThreadCountsAndBatchCompositions(string model)
    {
        string dir = model == "gemma2" ? TinyModels.Gemma2Checkpoint("single") : TinyModels.Gemma3Checkpoint("text");
        var seqs = Lengths.Select((n, i) => TokenIds.Random(n, seed: 40 + i)).ToArray();

        // each sequence alone, one thread
        var alone = new (RecordingHooks Hooks, float[] Logits)[seqs.Length];
        using (var one = GemmaEngine.Open(dir, new GemmaEngineOptions { Threads = 1 }))
        {
            for (int s = 0; s < seqs.Length; s++)
            {
                var h = RecordingHooks.All();
                var r = one.Forward(new ForwardRequest { Sequences = [seqs[s]], Logits = LogitsMode.AllRows, Hooks = h });
                alone[s] = (h, r.Logits!);
            }
        }

        foreach (var (threads, count) in new[] { (2, 3), (3, 7), (1, 7), (2, 1) })
        {
            using var engine = GemmaEngine.Open(dir, new GemmaEngineOptions { Threads = threads });
            var batch = seqs.Take(count).ToArray();
            var h = RecordingHooks.All();
            var r = engine.Forward(new ForwardRequest { Sequences = batch, Logits = LogitsMode.AllRows, Hooks = h });
            int vocab = engine.Architecture.Vocab, heads = engine.Architecture.Heads;
            for (int s = 0; s < count; s++)
            {
                string what = $"{model}, {threads} threads, batch of {count}, sequence {s}";
                Assert.Equal(alone[s].Logits, r.SequenceLogits(s).ToArray());
                foreach (var (name, (rows, width, keys)) in h.Seen)
                {
                    var (mine, myWidth, myKeys) = alone[s].Hooks.Seen[name];
                    int n = batch[s].Length, start = r.RowStart(s);
                    if (keys == 0)
                    {
                        Assert.True(mine.AsSpan().SequenceEqual(rows.AsSpan(start * width, n * width)), $"{what}: {name}");
                        continue;
                    }

                    // scores/pattern: the batch's rows are wider (the longest sequence's keys); the extra keys are masked
                    for (int i = 0; i < n; i++)
                    {
                        for (int head = 0; head < heads; head++)
                        {
                            var a = mine.AsSpan((((i * heads) + head) * myKeys), myKeys);
                            var b = rows.AsSpan(((((start + i) * heads) + head) * keys), keys);
                            Assert.True(a.SequenceEqual(b[..myKeys]), $"{what}: {name} row {i} head {head}");
                            float masked = name.EndsWith("hook_pattern", StringComparison.Ordinal) ? 0f : float.NegativeInfinity;
                            Assert.True(b[myKeys..].ToArray().All(v => v == masked), $"{what}: {name} masked tail");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void CapturingEveryHookDoesNotChangeABit()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma3Checkpoint("text"), new GemmaEngineOptions { Threads = 2 });
        var seqs = new[] { TokenIds.Random(9, 1), TokenIds.Random(4, 2) };
        var plain = engine.Forward(new ForwardRequest { Sequences = seqs, Logits = LogitsMode.AllRows });
        var captured = engine.Forward(new ForwardRequest { Sequences = seqs, Logits = LogitsMode.AllRows, Hooks = RecordingHooks.All() });
        Assert.Equal(plain.Logits, captured.Logits);
    }

    [Fact]
    public void ConcurrentForwardCallsOnOneEngineGiveTheSequentialResults()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single"), new GemmaEngineOptions { Threads = 2 });
        var seqs = Enumerable.Range(0, 8).Select(i => TokenIds.Random(3 + (i * 2), seed: 90 + i)).ToArray();
        var sequential = seqs.Select(s => engine.Forward(new ForwardRequest { Sequences = [s], Logits = LogitsMode.AllRows }).Logits!).ToArray();
        var concurrent = new float[seqs.Length][];
        Parallel.For(0, seqs.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var h = RecordingHooks.All();
            concurrent[i] = engine.Forward(new ForwardRequest { Sequences = [seqs[i]], Logits = LogitsMode.AllRows, Hooks = h }).Logits!;
        });
        for (int i = 0; i < seqs.Length; i++)
        {
            Assert.Equal(sequential[i], concurrent[i]);
        }
    }
}
