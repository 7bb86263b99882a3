using GemmaScope.Engine.Kernels;

namespace GemmaScope.Engine;

/// <summary>
/// What runs after a hook edits <c>attn.hook_attn_scores</c> or <c>hook_pattern</c>, so that the edit flows on:
///   pattern = softmax(scores) over each row's visible keys [lo, p] (lo = p − window + 1 on sliding layers, else 0),
///   z = Σ_j pattern_j · v_j for the same keys, query head h reading KV head h / (heads / kv_heads).
/// Masked entries stay masked (an edit outside [lo, p] has no effect). Unedited calls never come here: the kernel's
/// own pattern and z are used, so capture alone changes no bit. float64 sums; every output's order is fixed.
/// </summary>
internal static class AttentionEdits
{
    /// <summary>Recomputes the packed pattern [rows, heads × maxKeys] from the (edited) packed scores.</summary>
    public static void Softmax(CallLayout layout, int heads, int? window, float[] scores, float[] pattern)
    {
        int maxKeys = layout.MaxKeys;
        for (int r = 0; r < layout.TotalRows; r++)
        {
            var (lo, p) = Visible(layout, r, window);
            for (int h = 0; h < heads; h++)
            {
                int at = ((r * heads) + h) * maxKeys;
                var s = scores.AsSpan(at, maxKeys);
                var y = pattern.AsSpan(at, maxKeys);
                y.Clear();
                float max = float.NegativeInfinity;
                for (int j = lo; j <= p; j++)
                {
                    max = MathF.Max(max, s[j]);
                }

                double sum = 0;
                for (int j = lo; j <= p; j++)
                {
                    double e = float.IsNegativeInfinity(s[j]) ? 0 : Math.Exp(s[j] - (double)max);
                    y[j] = (float)e;
                    sum += e;
                }

                for (int j = lo; j <= p; j++)
                {
                    y[j] = (float)(y[j] / sum);
                }
            }
        }
    }

    /// <summary>Recomputes z [rows, heads × head_dim] from the (edited) packed pattern; keys before the call come from the caches' views.</summary>
    public static void Mix(CallLayout layout, int heads, int kvHeads, int headDim, int? window, float[] pattern, float[] v, KvLayerView[] past, float[] z)
    {
        int maxKeys = layout.MaxKeys, kvWidth = kvHeads * headDim, group = heads / kvHeads;
        var acc = new double[headDim];
        for (int r = 0; r < layout.TotalRows; r++)
        {
            int seq = layout.SequenceOfRow[r], start = layout.Starts[seq], pastLength = layout.PastLengths[seq];
            var (lo, p) = Visible(layout, r, window);
            for (int h = 0; h < heads; h++)
            {
                Array.Clear(acc);
                var w = pattern.AsSpan(((r * heads) + h) * maxKeys, maxKeys);
                int offset = h / group * headDim;
                for (int j = lo; j <= p; j++)
                {
                    ReadOnlySpan<float> row = j >= pastLength
                        ? v.AsSpan(((start + j - pastLength) * kvWidth) + offset, headDim)
                        : past[seq].Values.AsSpan((past[seq].Slot(j) * kvWidth) + offset, headDim);
                    for (int d = 0; d < headDim; d++)
                    {
                        acc[d] += w[j] * (double)row[d];
                    }
                }

                var zr = z.AsSpan(((r * heads) + h) * headDim, headDim);
                for (int d = 0; d < headDim; d++)
                {
                    zr[d] = (float)acc[d];
                }
            }
        }
    }

    private static (int Lo, int P) Visible(CallLayout layout, int row, int? window)
    {
        int p = layout.Positions[row];
        return (window is int w ? Math.Max(0, p - w + 1) : 0, p);
    }
}
