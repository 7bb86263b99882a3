using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GemmaScope.Engine;

/// <summary>Where one sequence's keys and values of one layer are: the call's own rows, or a (ring) cache.</summary>
internal readonly struct KeySource(float[] k, float[] v, int baseRow, int capacity, bool ring)
{
    public readonly float[] K = k;
    public readonly float[] V = v;
    private readonly int _base = baseRow;
    private readonly int _capacity = capacity;
    private readonly bool _ring = ring;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Row(int position) => _ring ? position % _capacity : _base + position;
}

/// <summary>
/// Causal grouped-query attention of one layer over packed sequences:
/// s_j = softcap(q·k_j · query_pre_attn_scalar^-½) for keys j in [lo, p] (lo = p − window + 1 on sliding layers, else 0),
/// pattern = softmax(s), z = Σ_j pattern_j v_j; query head h reads KV head h / (heads / kv_heads).
/// Work is split over (sequence, head) pairs, never over a reduction: every output has one summation order whatever
/// the thread count or batch. The same row functions run whether or not scores/patterns are materialized for hooks,
/// so capturing them does not change a bit.
/// </summary>
internal static class Attention
{
    public sealed class Plan
    {
        public required CallLayout Layout { get; init; }
        public required KeySource[] Sources { get; init; }
        public required int Heads { get; init; }
        public required int KvHeads { get; init; }
        public required int HeadDim { get; init; }
        public required int? Window { get; init; }
        public required float Scaling { get; init; }
        public required float? Cap { get; init; }
        public required int MaxKeys { get; init; }
        public required int Workers { get; init; }
    }

    private static (int Lo, int P) Range(Plan plan, int row)
    {
        int p = plan.Layout.Positions[row];
        return (plan.Window is int w ? Math.Max(0, p - w + 1) : 0, p);
    }

    /// <summary>Fills the [rows, heads × maxKeys] score buffer (−∞ where masked).</summary>
    public static void Scores(Plan plan, float[] q, float[] scores)
    {
        ForTasks(plan, (s, h, _) =>
        {
            var src = plan.Sources[s];
            for (int r = plan.Layout.Starts[s]; r < plan.Layout.Starts[s + 1]; r++)
            {
                var (lo, p) = Range(plan, r);
                var row = scores.AsSpan(((r * plan.Heads) + h) * plan.MaxKeys, plan.MaxKeys);
                row.Fill(float.NegativeInfinity);
                ScoreRow(plan, q, r, h, src, lo, p, row[lo..(p + 1)]);
            }
        });
    }

    /// <summary>pattern = softmax(scores) over each row's visible keys (0 elsewhere); in place when the buffers are the same.</summary>
    public static void Softmax(Plan plan, float[] scores, float[] pattern)
    {
        ForTasks(plan, (s, h, _) =>
        {
            for (int r = plan.Layout.Starts[s]; r < plan.Layout.Starts[s + 1]; r++)
            {
                var (lo, p) = Range(plan, r);
                int at = ((r * plan.Heads) + h) * plan.MaxKeys;
                SoftmaxRow(scores.AsSpan(at + lo, p - lo + 1), pattern.AsSpan(at + lo, p - lo + 1));
                pattern.AsSpan(at, lo).Clear();
                pattern.AsSpan(at + p + 1, plan.MaxKeys - p - 1).Clear();
            }
        });
    }

    /// <summary>z from the pattern buffer.</summary>
    public static void Mix(Plan plan, float[] pattern, float[] z)
    {
        ForTasks(plan, (s, h, _) =>
        {
            var src = plan.Sources[s];
            for (int r = plan.Layout.Starts[s]; r < plan.Layout.Starts[s + 1]; r++)
            {
                var (lo, p) = Range(plan, r);
                int at = ((r * plan.Heads) + h) * plan.MaxKeys;
                MixRow(plan, pattern.AsSpan(at + lo, p - lo + 1), src, h, lo, z.AsSpan(((r * plan.Heads) + h) * plan.HeadDim, plan.HeadDim));
            }
        });
    }

    /// <summary>Scores, softmax and z per row without materializing anything (no hook wants scores or patterns).</summary>
    public static void Fused(Plan plan, float[] q, float[] z, float[][] rows)
    {
        ForTasks(plan, (s, h, worker) =>
        {
            var src = plan.Sources[s];
            var buf = rows[worker];
            for (int r = plan.Layout.Starts[s]; r < plan.Layout.Starts[s + 1]; r++)
            {
                var (lo, p) = Range(plan, r);
                var row = buf.AsSpan(0, p - lo + 1);
                ScoreRow(plan, q, r, h, src, lo, p, row);
                SoftmaxRow(row, row);
                MixRow(plan, row, src, h, lo, z.AsSpan(((r * plan.Heads) + h) * plan.HeadDim, plan.HeadDim));
            }
        });
    }

    private static void ScoreRow(Plan plan, float[] q, int r, int h, KeySource src, int lo, int p, Span<float> dst)
    {
        int hd = plan.HeadDim, kvWidth = plan.KvHeads * hd, kvh = h / (plan.Heads / plan.KvHeads);
        var qv = q.AsSpan(((r * plan.Heads) + h) * hd, hd);
        for (int j = lo; j <= p; j++)
        {
            var kv = src.K.AsSpan((src.Row(j) * kvWidth) + (kvh * hd), hd);
            float s = Dot(qv, kv) * plan.Scaling;
            if (plan.Cap is float cap)
            {
                s = MathF.Tanh(s / cap) * cap;
            }

            dst[j - lo] = s;
        }
    }

    // p_j = exp(s_j − max) / Σ exp(s − max); −∞ scores give 0. Safe in place (each element read before it is written).
    private static void SoftmaxRow(ReadOnlySpan<float> s, Span<float> p)
    {
        float max = float.NegativeInfinity;
        for (int j = 0; j < s.Length; j++)
        {
            max = MathF.Max(max, s[j]);
        }

        double sum = 0;
        for (int j = 0; j < s.Length; j++)
        {
            float e = float.IsNegativeInfinity(s[j]) ? 0f : (float)Math.Exp(s[j] - max);
            p[j] = e;
            sum += e;
        }

        float inv = (float)(1 / sum);
        for (int j = 0; j < p.Length; j++)
        {
            p[j] *= inv;
        }
    }

    private static void MixRow(Plan plan, ReadOnlySpan<float> pattern, KeySource src, int h, int lo, Span<float> z)
    {
        int hd = plan.HeadDim, kvWidth = plan.KvHeads * hd, kvh = h / (plan.Heads / plan.KvHeads);
        z.Clear();
        for (int j = 0; j < pattern.Length; j++)
        {
            float w = pattern[j];
            var v = src.V.AsSpan((src.Row(lo + j) * kvWidth) + (kvh * hd), hd);
            Axpy(w, v, z);
        }
    }

    // Σ a_i b_i: 8 lanes in a fixed order then the lanes summed in a fixed order; the same for every row.
    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        float sum;
        if (Vector256.IsHardwareAccelerated && a.Length >= 8)
        {
            var acc = Vector256<float>.Zero;
            ref float ra = ref MemoryMarshal.GetReference(a);
            ref float rb = ref MemoryMarshal.GetReference(b);
            for (; i <= a.Length - 8; i += 8)
            {
                acc += Vector256.LoadUnsafe(ref ra, (nuint)i) * Vector256.LoadUnsafe(ref rb, (nuint)i);
            }

            sum = Vector256.Sum(acc);
        }
        else
        {
            sum = 0;
        }

        for (; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    // y += w · x
    private static void Axpy(float w, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var wv = Vector256.Create(w);
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float ry = ref MemoryMarshal.GetReference(y);
            for (; i <= x.Length - 8; i += 8)
            {
                (Vector256.LoadUnsafe(ref ry, (nuint)i) + (wv * Vector256.LoadUnsafe(ref rx, (nuint)i))).StoreUnsafe(ref ry, (nuint)i);
            }
        }

        for (; i < x.Length; i++)
        {
            y[i] += w * x[i];
        }
    }

    // Runs body(sequence, head, worker) for every pair; pairs are dealt to workers round-robin (outputs never shared).
    private static void ForTasks(Plan plan, Action<int, int, int> body)
    {
        int tasks = plan.Layout.SequenceCount * plan.Heads;
        int workers = Math.Min(plan.Workers, tasks);
        if (workers <= 1)
        {
            for (int t = 0; t < tasks; t++)
            {
                body(t / plan.Heads, t % plan.Heads, 0);
            }

            return;
        }

        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            for (int t = w; t < tasks; t += workers)
            {
                body(t / plan.Heads, t % plan.Heads, w);
            }
        });
    }
}
