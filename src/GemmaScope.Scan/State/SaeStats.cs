namespace GemmaScope.Scan;

/// <summary>
/// Streaming statistics of one SAE's features. Every field merges exactly: integer counts and histogram buckets, a
/// fixed-point Int128 sum (each value scaled by 2^40 and truncated, so addition is associative), float max, and the
/// examples under total orders. So any grouping of the same batches gives the same bits.
/// Memory: 3,628 bytes per feature (count 8, sum 16, max 4, 450 × 8 histogram) plus, for features that fire,
/// (TopK + QuantileGroups·ExamplesPerGroup) × (8·ExampleWindow + about 100) bytes of examples.
/// </summary>
internal sealed class SaeStats
{
    /// <summary>Scale of the fixed-point sum: 2^40.</summary>
    public const double SumScale = 1099511627776.0;

    public SaeStats(int features)
    {
        Features = features;
        Count = new long[features];
        Sum = new Int128[features];
        Max = new float[features];
        Array.Fill(Max, float.NegativeInfinity);
        Hist = new long[(long)features * FineHistogram.Buckets];
        Examples = new FeatureExamples?[features];
    }

    public int Features { get; }

    public long[] Count { get; }

    public Int128[] Sum { get; }

    public float[] Max { get; }

    public long[] Hist { get; }

    public FeatureExamples?[] Examples { get; }

    public static Int128 Fixed(float v) => (Int128)(v * SumScale);

    public Span<long> HistOf(int f) => Hist.AsSpan(f * FineHistogram.Buckets, FineHistogram.Buckets);

    /// <summary>Bytes this state holds now (dense arrays plus examples).</summary>
    public long Bytes()
    {
        long b = Features * (8L + 16 + 4 + 8 * FineHistogram.Buckets + 8);
        foreach (var e in Examples)
        {
            if (e is null)
            {
                continue;
            }

            b += 64;
            foreach (var x in e.Top)
            {
                b += 80 + 8L * x.Tokens.Length;
            }

            foreach (var x in e.Sample)
            {
                b += 80 + 8L * x.Tokens.Length;
            }
        }

        return b;
    }

    /// <summary>Folds <paramref name="other"/> in (disjoint batches).</summary>
    public void Add(SaeStats other, int topK, int sampleSize)
    {
        for (int f = 0; f < Features; f++)
        {
            Count[f] += other.Count[f];
            Sum[f] += other.Sum[f];
            if (other.Max[f] > Max[f])
            {
                Max[f] = other.Max[f];
            }
        }

        for (long i = 0; i < Hist.LongLength; i++)
        {
            Hist[i] += other.Hist[i];
        }

        for (int f = 0; f < Features; f++)
        {
            var o = other.Examples[f];
            if (o is null)
            {
                continue;
            }

            var mine = Examples[f] ??= new FeatureExamples();
            foreach (var e in o.Top)
            {
                if (mine.TopWants(e.Value, e.Global, topK))
                {
                    mine.AddTop(e, topK);
                }
            }

            foreach (var e in o.Sample)
            {
                if (mine.SampleWants(e.Priority, e.Global, sampleSize))
                {
                    mine.AddSample(e, sampleSize);
                }
            }
        }
    }
}
