namespace GemmaScope.TestSupport;

/// <summary>Token ids for the tiny models (vocabulary 256; BOS is 2).</summary>
public static class TokenIds
{
    /// <summary>BOS, then seeded random ids in [4, <paramref name="vocab"/>).</summary>
    public static int[] Random(int length, int seed, int vocab = 256)
    {
        var rng = new Random(seed);
        var ids = new int[length];
        ids[0] = 2;
        for (int i = 1; i < length; i++)
        {
            ids[i] = rng.Next(4, vocab);
        }

        return ids;
    }
}
