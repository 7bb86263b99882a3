namespace GemmaScope.Engine.Tests;

/// <summary>
/// A prefix and then chunks through a <see cref="KvCache"/> give the rows of one pass over the whole sequence, bit for
/// bit: every row's projections are computed in the same order whatever the rows around it, RoPE angles depend only on
/// the absolute position, and a query reads the same keys in the same order from the cache as from the call's rows.
/// </summary>
public class KvCacheTests
{
    [Theory]
    [InlineData("gemma2", new[] { 3, 1, 5, 1, 1, 6, 3 })] // 20 tokens, window 4: the ring wraps many times
    [InlineData("gemma3", new[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 })]
    [InlineData("gemma3", new[] { 7, 9, 2 })]
    public void PrefixThenChunksEqualsOnePassBitwise(string model, int[] chunks)
    {
        string dir = model == "gemma2" ? TinyModels.Gemma2Checkpoint("bf16") : TinyModels.Gemma3Checkpoint("text");
        using var engine = GemmaEngine.Open(dir, new GemmaEngineOptions { Threads = 2 });
        int total = chunks.Sum();
        var ids = TokenIds.Random(total, seed: 77);
        var whole = RecordingHooks.All();
        var one = engine.Forward(new ForwardRequest { Sequences = [ids], Logits = LogitsMode.AllRows, Hooks = whole });
        int vocab = engine.Architecture.Vocab, heads = engine.Architecture.Heads;

        using var cache = engine.CreateCache();
        int at = 0;
        foreach (int n in chunks)
        {
            var h = RecordingHooks.All();
            var r = engine.Forward(new ForwardRequest { Sequences = [ids[at..(at + n)]], Caches = [cache], Logits = LogitsMode.AllRows, Hooks = h });
            Assert.Equal(at, r.StartPosition(0));
            Assert.True(one.Logits.AsSpan(at * vocab, n * vocab).SequenceEqual(r.Logits), $"logits of tokens {at}..{at + n}");
            foreach (var (name, (rows, width, keys)) in h.Seen)
            {
                var (all, allWidth, allKeys) = whole.Seen[name];
                if (keys == 0)
                {
                    Assert.True(all.AsSpan(at * width, n * width).SequenceEqual(rows), $"{name} of tokens {at}..{at + n}");
                    continue;
                }

                Assert.Equal(at + n, keys); // absolute key positions 0 … at + n − 1
                for (int i = 0; i < n; i++)
                {
                    for (int head = 0; head < heads; head++)
                    {
                        var a = all.AsSpan(((((at + i) * heads) + head) * allKeys), keys);
                        var b = rows.AsSpan((((i * heads) + head) * keys), keys);
                        Assert.True(a.SequenceEqual(b), $"{name} row {at + i} head {head}");
                    }
                }
            }

            at += n;
            Assert.Equal(at, cache.Length);
        }

        // sliding layers hold a ring of the window − 1 past keys plus a call's rows; global layers everything
        int window = engine.Architecture.LayerKinds.First(k => k.SlidingWindow is not null).SlidingWindow!.Value;
        for (int l = 0; l < engine.Architecture.Layers; l++)
        {
            var kv = cache.Layers[l];
            if (kv.Window is null)
            {
                Assert.True(kv.Capacity >= total);
            }
            else
            {
                Assert.True(kv.Capacity <= window - 1 + chunks.Max(), $"layer {l}: ring of {kv.Capacity}");
            }
        }
    }

    [Fact]
    public void CachedAndUncachedSequencesShareACall()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma3Checkpoint("text"), new GemmaEngineOptions { Threads = 3 });
        var a = TokenIds.Random(14, seed: 5);
        var b = TokenIds.Random(6, seed: 6);
        var expectedA = engine.Forward(new ForwardRequest { Sequences = [a], Logits = LogitsMode.AllRows }).Logits!;
        var expectedB = engine.Forward(new ForwardRequest { Sequences = [b], Logits = LogitsMode.LastRow }).Logits!;
        using var cache = engine.CreateCache();
        engine.Forward(new ForwardRequest { Sequences = [a[..9]], Caches = [cache], Logits = LogitsMode.None });
        var r = engine.Forward(new ForwardRequest { Sequences = [b, a[9..]], Caches = [null, cache], Logits = LogitsMode.AllRows });
        Assert.Equal(expectedB, r.LastLogits(0).ToArray());
        Assert.Equal(expectedA.AsSpan(9 * engine.Architecture.Vocab).ToArray(), r.SequenceLogits(1).ToArray());
        Assert.Equal(14, cache.Length);
    }

    [Fact]
    public void ACacheIsRefusedTwiceInOneCallAndAcrossEngines()
    {
        using var engine = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single"));
        using var other = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single"));
        using var cache = engine.CreateCache();
        var ids = TokenIds.Random(3, 1);
        Assert.Throws<InvalidOperationException>(() => engine.Forward(new ForwardRequest { Sequences = [ids, ids], Caches = [cache, cache] }));
        Assert.Equal(0, cache.Length);
        Assert.Throws<ArgumentException>(() => other.Forward(new ForwardRequest { Sequences = [ids], Caches = [cache] }));
        Assert.Throws<ArgumentException>(() => engine.Forward(new ForwardRequest { Sequences = [ids], Caches = [cache, null] }));
        engine.Forward(new ForwardRequest { Sequences = [ids], Caches = [cache] }); // still usable
        Assert.Equal(3, cache.Length);
    }
}
