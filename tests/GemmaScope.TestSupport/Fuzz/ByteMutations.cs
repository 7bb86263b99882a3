namespace GemmaScope.TestSupport;

/// <summary>
/// Seeded byte mutations for fuzz tests: a copy of a valid file with 1 to 3 edits at random places, each drawn from the
/// caller's list (a test biases the list to its format). The same seed and list give the same mutants.
/// </summary>
public static class ByteMutations
{
    /// <summary>One edit of <paramref name="b"/> at <paramref name="at"/> (a valid index), drawing anything else it needs from <paramref name="rng"/>.</summary>
    public delegate void Edit(List<byte> b, int at, Random rng);

    /// <summary>1 to 3 edits of a copy of <paramref name="src"/>, each at a random index, chosen uniformly from <paramref name="edits"/>.</summary>
    public static byte[] Mutate(byte[] src, Random rng, IReadOnlyList<Edit> edits)
    {
        var b = new List<byte>(src);
        int ops = 1 + rng.Next(3);
        for (int o = 0; o < ops && b.Count > 0; o++)
        {
            int at = rng.Next(b.Count);
            edits[rng.Next(edits.Count)](b, at, rng);
        }

        return [.. b];
    }

    /// <summary>Flips one bit of the byte.</summary>
    public static void FlipBit(List<byte> b, int at, Random rng) => b[at] ^= (byte)(1 << rng.Next(8));

    /// <summary>Sets the byte to a random value.</summary>
    public static void SetRandom(List<byte> b, int at, Random rng) => b[at] = (byte)rng.Next(256);

    /// <summary>Sets the byte to one of <paramref name="alphabet"/> (a format's structural characters).</summary>
    public static Edit SetFrom(byte[] alphabet) => (b, at, rng) => b[at] = alphabet[rng.Next(alphabet.Length)];

    /// <summary>Deletes 1 to 16 bytes from the index on.</summary>
    public static void Delete(List<byte> b, int at, Random rng) => b.RemoveRange(at, Math.Min(b.Count - at, rng.Next(1, 17)));

    /// <summary>One time in four cuts the file at the index; otherwise makes <paramref name="otherwise"/>.</summary>
    public static Edit TruncateOr(Edit otherwise) => (b, at, rng) =>
    {
        if (rng.Next(4) == 0)
        {
            b.RemoveRange(at, b.Count - at);
        }
        else
        {
            otherwise(b, at, rng);
        }
    };

    /// <summary>Outcomes counted by kind (the first word: an exception type, MISREAD, ALLOCATED, …), most frequent first.</summary>
    public static string Kinds(IEnumerable<string> outcomes) => string.Join(", ", outcomes
        .Select(o => o.Split(':', ' ')[0])
        .GroupBy(k => k).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}"));
}
