namespace GemmaScope.Scan;

/// <summary>
/// The exact, mergeable activation histogram kept per feature: 1/8-octave buckets read off the float's bits.
/// Bucket 0 holds v &lt; 2^−12 (and any v ≤ 0), bucket 257 holds v ≥ 2^20, and bucket 1 + 8·(e + 12) + m holds
/// 2^e·(1 + m/8) ≤ v &lt; 2^e·(1 + (m+1)/8) for e in [−12, 20), m in [0, 8). Counts are integers, so merging is exact.
/// The 50-bin display histogram is derived from it at the end (see <see cref="Rebin"/>).
/// </summary>
public static class FineHistogram
{
    /// <summary>Buckets per feature.</summary>
    public const int Buckets = 258;

    /// <summary>Lowest octave exponent with its own buckets.</summary>
    public const int MinExponent = -12;

    /// <summary>Octave exponent from which everything lands in the overflow bucket.</summary>
    public const int MaxExponent = 20;

    /// <summary>The bucket of <paramref name="v"/>.</summary>
    public static int Bucket(float v)
    {
        int bits = BitConverter.SingleToInt32Bits(v);
        if (bits <= 0)
        {
            return 0; // v ≤ 0 (or −0, negative values)
        }

        int e = ((bits >> 23) & 0xFF) - 127;
        if (e < MinExponent)
        {
            return 0;
        }

        if (e >= MaxExponent)
        {
            return Buckets - 1;
        }

        return 1 + ((e - MinExponent) << 3) + ((bits >> 20) & 7);
    }

    /// <summary>The lower edge of bucket <paramref name="b"/> (0 for bucket 0).</summary>
    public static double LowerEdge(int b) =>
        b == 0 ? 0 : b == Buckets - 1 ? Math.ScaleB(1, MaxExponent) : Math.ScaleB(1 + ((b - 1) & 7) / 8.0, MinExponent + ((b - 1) >> 3));

    /// <summary>
    /// Display histogram: <paramref name="bins"/> equal bins over [0, max]; each fine bucket's count goes to the bin of
    /// its midpoint (clamped to max), so bin edges are exact only to 1/8 octave.
    /// </summary>
    public static long[] Rebin(ReadOnlySpan<long> fine, float max, int bins)
    {
        var result = new long[bins];
        if (!(max > 0))
        {
            if (fine.Length > 0)
            {
                long all = 0;
                foreach (var c in fine)
                {
                    all += c;
                }

                result[0] = all;
            }

            return result;
        }

        for (int b = 0; b < fine.Length; b++)
        {
            if (fine[b] == 0)
            {
                continue;
            }

            double lo = LowerEdge(b), hi = b == Buckets - 1 ? max : LowerEdge(b + 1);
            double mid = Math.Min(max, (lo + hi) / 2);
            int bin = (int)Math.Min(bins - 1, Math.Floor(mid / max * bins));
            result[bin] += fine[b];
        }

        return result;
    }
}
