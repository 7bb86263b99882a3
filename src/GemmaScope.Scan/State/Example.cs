namespace GemmaScope.Scan;

/// <summary>One stored example: a token where a feature fired, with a window of its context.</summary>
internal sealed class Example
{
    public required float Value { get; init; }

    /// <summary>Context index × ContextLength + position: unique in the corpus, the tie-break everywhere.</summary>
    public required long Global { get; init; }

    /// <summary>Hash priority for the uniform sample (smaller is kept).</summary>
    public required ulong Priority { get; init; }

    /// <summary>Position in the context of the first window token.</summary>
    public required int WindowStart { get; init; }

    public required int[] Tokens { get; init; }

    /// <summary>The feature's value at each window token (0 at BOS/EOS/pad, which are never counted).</summary>
    public required float[] Values { get; init; }

    /// <summary>Top order: larger value first, then earlier in the corpus.</summary>
    public static bool TopBefore(float v1, long g1, float v2, long g2) => v1 > v2 || (v1 == v2 && g1 < g2);

    /// <summary>Sample order: smaller priority first, then earlier in the corpus.</summary>
    public static bool SampleBefore(ulong p1, long g1, ulong p2, long g2) => p1 < p2 || (p1 == p2 && g1 < g2);
}

/// <summary>A feature's kept examples: the top-k by value and a uniform sample (bottom-s by hash), both under total orders.</summary>
internal sealed class FeatureExamples
{
    public List<Example> Top { get; } = [];

    public List<Example> Sample { get; } = [];

    public bool TopWants(float v, long g, int k) => Top.Count < k || Example.TopBefore(v, g, Top[^1].Value, Top[^1].Global);

    public bool SampleWants(ulong p, long g, int s) => Sample.Count < s || Example.SampleBefore(p, g, Sample[^1].Priority, Sample[^1].Global);

    public void AddTop(Example e, int k)
    {
        int i = Top.Count;
        while (i > 0 && Example.TopBefore(e.Value, e.Global, Top[i - 1].Value, Top[i - 1].Global))
        {
            i--;
        }

        Top.Insert(i, e);
        if (Top.Count > k)
        {
            Top.RemoveAt(k);
        }
    }

    public void AddSample(Example e, int s)
    {
        int i = Sample.Count;
        while (i > 0 && Example.SampleBefore(e.Priority, e.Global, Sample[i - 1].Priority, Sample[i - 1].Global))
        {
            i--;
        }

        Sample.Insert(i, e);
        if (Sample.Count > s)
        {
            Sample.RemoveAt(s);
        }
    }
}
