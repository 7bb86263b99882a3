using GemmaScope.Engine.Kernels;

namespace GemmaScope.Engine.Tests.Kernels;

public class AttentionTests
{
    private const int Tokens = 37;

    private sealed record Case(int Heads, int KvHeads, int D, float Cap, int Window);

    private sealed record Inputs(float[] Q, float[] K, float[] V);

    private sealed record Outputs(float[] Z, float[] Scores, float[] Pattern);

    private static Inputs Make(Case c, int seed) => new(
        TestData.Random(Tokens * c.Heads * c.D, seed, -3f, 3f),
        TestData.Random(Tokens * c.KvHeads * c.D, seed + 1, -3f, 3f),
        TestData.Random(Tokens * c.KvHeads * c.D, seed + 2, -2f, 2f));

    private static AttentionShape Shape(Case c) => new(c.Heads, c.KvHeads, c.D, AttentionShape.ScaleFor(c.D), c.Cap, c.Window);

    // Independent float64 reference over the whole sequence: dense [T, T] scores with the causal/sliding mask.
    private static (double[] Z, double[] Scores, double[] Pattern) Reference(Case c, Inputs x)
    {
        int t = Tokens, hd = c.Heads * c.D, kvd = c.KvHeads * c.D;
        double scale = 1.0 / Math.Sqrt(c.D);
        var z = new double[t * hd];
        var sc = new double[t * c.Heads * t];
        var pa = new double[t * c.Heads * t];
        for (int i = 0; i < t; i++)
        {
            for (int h = 0; h < c.Heads; h++)
            {
                int g = h / (c.Heads / c.KvHeads);
                var s = new double[t];
                double max = double.NegativeInfinity;
                for (int j = 0; j < t; j++)
                {
                    bool visible = j <= i && (c.Window == 0 || j > i - c.Window);
                    if (!visible)
                    {
                        s[j] = double.NegativeInfinity;
                        continue;
                    }

                    double dot = 0;
                    for (int e = 0; e < c.D; e++)
                    {
                        dot += (double)x.Q[(i * hd) + (h * c.D) + e] * x.K[(j * kvd) + (g * c.D) + e];
                    }

                    s[j] = dot * scale;
                    if (c.Cap > 0)
                    {
                        s[j] = Math.Tanh(s[j] / c.Cap) * c.Cap;
                    }

                    max = Math.Max(max, s[j]);
                }

                double sum = 0;
                var p = new double[t];
                for (int j = 0; j < t; j++)
                {
                    p[j] = double.IsNegativeInfinity(s[j]) ? 0 : Math.Exp(s[j] - max);
                    sum += p[j];
                }

                for (int j = 0; j < t; j++)
                {
                    p[j] /= sum;
                    sc[(((i * c.Heads) + h) * t) + j] = s[j];
                    pa[(((i * c.Heads) + h) * t) + j] = p[j];
                    for (int e = 0; e < c.D; e++)
                    {
                        z[(i * hd) + (h * c.D) + e] += p[j] * x.V[(j * kvd) + (g * c.D) + e];
                    }
                }
            }
        }

        return (z, sc, pa);
    }

    private static Outputs Run(Case c, Inputs x, int threads = 1)
    {
        var z = TestData.Poisoned(Tokens * c.Heads * c.D);
        var s = TestData.Poisoned(Tokens * c.Heads * Tokens);
        var p = TestData.Poisoned(Tokens * c.Heads * Tokens);
        Attention.Forward(Shape(c), x.Q, x.K, x.V, Tokens, default, z, s, p, threads);
        return new(z, s, p);
    }

    public static TheoryData<int, int, int, float, int> Cases() => new()
    {
        { 5, 1, 24, 0f, 0 },
        { 5, 1, 24, 50f, 7 },
        { 5, 1, 24, 0f, 7 },
        { 6, 2, 24, 5f, 0 },
        { 6, 2, 40, 0f, 7 },
        { 2, 2, 256, 50f, 9 },
        { 3, 1, 6, 0f, 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_float64_reference(int heads, int kvHeads, int d, float cap, int window)
    {
        var c = new Case(heads, kvHeads, d, cap, window);
        var x = Make(c, heads + d + window);
        var o = Run(c, x);
        var (rz, rs, rp) = Reference(c, x);
        TestData.Close(rz, o.Z, 2e-5, "z");
        TestData.Close(rp, o.Pattern, 2e-6, "pattern");
        for (int i = 0; i < rs.Length; i++)
        {
            if (double.IsNegativeInfinity(rs[i]))
            {
                Assert.True(float.IsNegativeInfinity(o.Scores[i]), $"scores[{i}] should be masked (−∞), got {o.Scores[i]}");
                Assert.Equal(0f, o.Pattern[i]);
            }
            else
            {
                Assert.True(Math.Abs(rs[i] - o.Scores[i]) <= 2e-5 * Math.Max(1, Math.Abs(rs[i])), $"scores[{i}]: expected {rs[i]}, got {o.Scores[i]}");
            }
        }
    }

    [Fact]
    public void Soft_cap_changes_scores_and_bounds_them()
    {
        var on = new Case(5, 1, 24, 3f, 0);
        var off = on with { Cap = 0f };
        var x = Make(on, 77);
        var a = Run(on, x);
        var b = Run(off, x);
        Assert.NotEqual(a.Scores[0], b.Scores[0]);
        Assert.All(a.Scores, s => Assert.True(float.IsNegativeInfinity(s) || Math.Abs(s) <= 3f));
        Assert.Contains(b.Scores, s => Math.Abs(s) > 3f);
    }

    [Fact]
    public void Sliding_window_masks_keys_at_or_before_p_minus_window()
    {
        var c = new Case(5, 1, 24, 0f, 7);
        var o = Run(c, Make(c, 5));
        int row = (20 * c.Heads) + 3;
        for (int j = 0; j < Tokens; j++)
        {
            bool visible = j is > 20 - 7 and <= 20;
            Assert.Equal(visible, o.Pattern[(row * Tokens) + j] > 0);
        }
    }

    [Theory]
    [InlineData(0, 20)]
    [InlineData(7, 20)]
    [InlineData(7, 3)]
    [InlineData(7, 7)]
    [InlineData(7, 36)]
    public void Prefix_then_chunk_through_the_cache_equals_the_whole_bitwise(int window, int prefix)
    {
        var c = new Case(5, 1, 24, 50f, window);
        var x = Make(c, 123);
        var whole = Run(c, x);
        int kvw = c.KvHeads * c.D, hd = c.Heads * c.D;

        // Ring of exactly the window for sliding layers; room for everything for full attention.
        var cache = KvLayerView.Allocate(window > 0 ? window : Tokens, kvw);
        var first = RunChunk(c, x, 0, prefix, default, hd, kvw);
        cache = cache.Append(x.K.AsSpan(0, prefix * kvw), x.V.AsSpan(0, prefix * kvw), prefix, ring: window > 0);
        var second = RunChunk(c, x, prefix, Tokens - prefix, cache, hd, kvw);

        TestData.BitEqual(whole.Z.AsSpan(0, prefix * hd), first.Z, "prefix z");
        TestData.BitEqual(whole.Z.AsSpan(prefix * hd), second.Z, "chunk z");
        for (int r = 0; r < (Tokens - prefix) * c.Heads; r++)
        {
            // Scores/pattern rows of the chunk cover all Tokens key positions, as the whole run's rows do.
            int wr = (prefix * c.Heads) + r;
            TestData.BitEqual(whole.Scores.AsSpan(wr * Tokens, Tokens), second.Scores.AsSpan(r * Tokens, Tokens), $"scores row {r}");
            TestData.BitEqual(whole.Pattern.AsSpan(wr * Tokens, Tokens), second.Pattern.AsSpan(r * Tokens, Tokens), $"pattern row {r}");
        }
    }

    [Fact]
    public void Token_by_token_decode_through_a_wrapping_ring_equals_the_whole_bitwise()
    {
        var c = new Case(6, 2, 24, 0f, 7);
        var x = Make(c, 321);
        var whole = Run(c, x);
        int kvw = c.KvHeads * c.D, hd = c.Heads * c.D;
        var ring = KvLayerView.Allocate(7, kvw);
        for (int t = 0; t < Tokens; t++)
        {
            var o = RunChunk(c, x, t, 1, ring, hd, kvw);
            TestData.BitEqual(whole.Z.AsSpan(t * hd, hd), o.Z, $"z at {t}");
            ring = ring.Append(x.K.AsSpan(t * kvw, kvw), x.V.AsSpan(t * kvw, kvw), 1, ring: true);
        }

        Assert.Equal(Tokens, ring.Length);
        Assert.Equal(Tokens - 7, ring.Start);
        Assert.Equal((Tokens - 7) % 7, ring.RingStart);
    }

    [Fact]
    public void Ring_keeps_the_last_window_positions_in_slot_p_mod_window()
    {
        const int kvw = 3, window = 7;
        var k = TestData.Random(23 * kvw, 1);
        var v = TestData.Random(23 * kvw, 2);
        var ring = KvLayerView.Allocate(window, kvw);
        ring = ring.Append(k.AsSpan(0, 4 * kvw), v.AsSpan(0, 4 * kvw), 4, ring: true);
        Assert.Equal((0, 4, 0), (ring.Start, ring.Length, ring.RingStart));
        ring = ring.Append(k.AsSpan(4 * kvw, 19 * kvw), v.AsSpan(4 * kvw, 19 * kvw), 19, ring: true);
        Assert.Equal((16, 23, 2), (ring.Start, ring.Length, ring.RingStart));
        for (int p = 16; p < 23; p++)
        {
            TestData.BitEqual(k.AsSpan(p * kvw, kvw), ring.Keys.AsSpan((p % window) * kvw, kvw), $"key {p}");
            TestData.BitEqual(v.AsSpan(p * kvw, kvw), ring.Values.AsSpan((p % window) * kvw, kvw), $"value {p}");
        }

        var full = KvLayerView.Allocate(5, kvw);
        Assert.Throws<InvalidOperationException>(() => full.Append(k.AsSpan(0, 6 * kvw), v.AsSpan(0, 6 * kvw), 6, ring: false));
    }

    [Fact]
    public void A_cache_missing_needed_keys_is_refused()
    {
        var c = new Case(5, 1, 24, 0f, 0);
        var x = Make(c, 9);
        int kvw = c.KvHeads * c.D, hd = c.Heads * c.D;

        // A 7-slot ring holding 20 positions cannot serve full attention.
        var ring = KvLayerView.Allocate(7, kvw).Append(x.K.AsSpan(0, 20 * kvw), x.V.AsSpan(0, 20 * kvw), 20, ring: true);
        var ex = Assert.Throws<ArgumentException>(() => RunChunk(c, x, 20, 1, ring, hd, kvw));
        Assert.Contains("[13, 20)", ex.Message);
    }

    [Fact]
    public void Thread_count_does_not_change_any_bit()
    {
        var c = new Case(6, 2, 40, 50f, 7);
        var x = Make(c, 55);
        var one = Run(c, x, 1);
        foreach (int threads in new[] { 2, 3, 7, 0 })
        {
            var o = Run(c, x, threads);
            TestData.BitEqual(one.Z, o.Z, $"z, {threads} threads");
            TestData.BitEqual(one.Scores, o.Scores, $"scores, {threads} threads");
            TestData.BitEqual(one.Pattern, o.Pattern, $"pattern, {threads} threads");
        }
    }

    [Fact]
    public void Optional_outputs_do_not_change_z()
    {
        var c = new Case(5, 1, 24, 50f, 7);
        var x = Make(c, 8);
        var with = Run(c, x);
        var z = TestData.Poisoned(with.Z.Length);
        Attention.Forward(Shape(c), x.Q, x.K, x.V, Tokens, default, z, threads: 2);
        TestData.BitEqual(with.Z, z, "z");
    }

    [Fact]
    public void Large_scores_do_not_overflow_the_softmax()
    {
        // Scores in the hundreds (no soft-cap): exp without subtracting the row maximum would overflow float32.
        var c = new Case(5, 1, 24, 0f, 0);
        var x = Make(c, 99);
        for (int i = 0; i < x.Q.Length; i++)
        {
            x.Q[i] *= 12f;
        }

        for (int i = 0; i < x.K.Length; i++)
        {
            x.K[i] *= 12f;
        }

        var o = Run(c, x);
        var (rz, _, rp) = Reference(c, x);
        Assert.Contains(o.Scores, s => s > 200f);
        TestData.Close(rp, o.Pattern, 5e-4, "pattern");
        TestData.Close(rz, o.Z, 5e-4, "z");
    }

    private static Outputs RunChunk(Case c, Inputs x, int start, int count, KvLayerView past, int hd, int kvw)
    {
        int keys = start + count;
        var z = TestData.Poisoned(count * hd);
        var s = TestData.Poisoned(count * c.Heads * keys);
        var p = TestData.Poisoned(count * c.Heads * keys);
        Attention.Forward(
            Shape(c),
            x.Q.AsSpan(start * hd, count * hd),
            x.K.AsSpan(start * kvw, count * kvw),
            x.V.AsSpan(start * kvw, count * kvw),
            count,
            past,
            z,
            s,
            p,
            threads: 2);
        return new(z, s, p);
    }
}
