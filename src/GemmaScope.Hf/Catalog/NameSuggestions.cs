namespace GemmaScope.Hf;

/// <summary>Finds the known names closest to a mistyped one, for error messages.</summary>
internal static class NameSuggestions
{
    /// <summary>Up to <paramref name="max"/> candidates nearest to <paramref name="name"/> by edit distance, nearest first.</summary>
    public static List<string> Closest(string name, IEnumerable<string> candidates, int max = 5)
    {
        var scored = new List<(int Distance, string Name)>();
        foreach (var candidate in candidates)
        {
            scored.Add((Levenshtein(name, candidate), candidate));
        }

        scored.Sort((a, b) => a.Distance != b.Distance ? a.Distance.CompareTo(b.Distance) : string.CompareOrdinal(a.Name, b.Name));
        var result = new List<string>(Math.Min(max, scored.Count));
        for (var i = 0; i < scored.Count && i < max; i++)
        {
            result.Add(scored[i].Name);
        }

        return result;
    }

    /// <summary>" Did you mean: a, b, c?" or an empty string when there is nothing to suggest.</summary>
    public static string DidYouMean(string name, IEnumerable<string> candidates, int max = 5)
    {
        var closest = Closest(name, candidates, max);
        return closest.Count == 0 ? string.Empty : $" Closest known names: {string.Join(", ", closest)}.";
    }

    // Classic two-row dynamic programme: d[i][j] = edit distance between a[..i] and b[..j],
    // d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + (a[i-1] != b[j-1])). Case-insensitive, since
    // "Gemma-Scope-2B-PT-RES" is the same mistake as a typo.
    internal static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            var ca = char.ToLowerInvariant(a[i - 1]);
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = ca == char.ToLowerInvariant(b[j - 1]) ? 0 : 1;
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
