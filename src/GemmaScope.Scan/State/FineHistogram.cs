namespace GemmaScope.Scan;

/// <summary>
/// The exact, mergeable activation histogram kept per feature: 1/16-octave buckets read off the float's bits.
/// Bucket 0 holds v &lt; 2^−10 (and any v ≤ 0), bucket 449 holds v ≥ 2^18, and bucket 1 + 16·(e + 10) + m holds
/// 2^e·(1 + m/16) ≤ v &lt; 2^e·(1 + (m+1)/16) for e in [−10, 18), m in [0, 16). Counts are integers, so merging is exact.
/// The 50-bin display histogram is derived from it at the end (see <see cref="Rebin"/>).
/// </summary>
public static class FineHistogram
{
    /// <summary>Buckets per feature.</summary>
    public const int Buckets = 450;

    /// <summary>Lowest octave exponent with its own buckets.</summary>
    public const int MinExponent = -10;

    /// <summary>Octave exponent from which everything lands in the overflow bucket.</summary>
    public const int MaxExponent = 18;

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

        return 1 + ((e - MinExponent) << 4) + ((bits >> 19) & 15);
    }

    /// <summary>The lower edge of bucket <paramref name="b"/> (0 for bucket 0).</summary>
    public static double LowerEdge(int b) =>
        b == 0 ? 0 : b == Buckets - 1 ? Math.ScaleB(1, MaxExponent) : Math.ScaleB(1 + ((b - 1) & 15) / 16.0, MinExponent + ((b - 1) >> 4));

    /// <summary>
    /// Display histogram: <paramref name="bins"/> equal bins over [0, max]. Each fine bucket's count is spread over the
    /// bins its range [lo, min(hi, max)] overlaps, in proportion to the overlap, as integers (floors, then the remainder
    /// one by one to the largest fractional parts, ties to the lower bin): totals are exact, bin edges good to 1/16 octave.
    /// </summary>
    public static long[] Rebin(ReadOnlySpan<long> fine, float max, int bins)
    {
        var result = new long[bins];
        long all = 0;
        foreach (var c in fine)
        {
            all += c;
        }

        if (!(max > 0))
        {
            result[0] = all;
            return result;
        }

        var share = new double[bins];
        for (int b = 0; b < fine.Length; b++)
        {
            long count = fine[b];
            if (count == 0)
            {
                continue;
            }

            double lo = Math.Min(LowerEdge(b), max), hi = b == Buckets - 1 ? max : Math.Min(LowerEdge(b + 1), max);
            double width = max / bins;
            int first = (int)Math.Min(bins - 1, Math.Floor(lo / width));
            int last = (int)Math.Min(bins - 1, Math.Floor(hi / width));
            if (hi <= lo || first == last)
            {
                result[first] += count;
                continue;
            }

            Array.Clear(share);
            long given = 0;
            for (int i = first; i <= last; i++)
            {
                double overlap = Math.Min(hi, (i + 1) * width) - Math.Max(lo, i * width);
                share[i] = Math.Max(0, overlap) / (hi - lo) * count;
                long whole = (long)Math.Floor(share[i]);
                result[i] += whole;
                share[i] -= whole;
                given += whole;
            }

            for (long left = count - given; left > 0; left--)
            {
                int best = first;
                for (int i = first + 1; i <= last; i++)
                {
                    if (share[i] > share[best])
                    {
                        best = i;
                    }
                }

                result[best]++;
                share[best] = -1;
            }
        }

        return result;
    }
}
