namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// Finds added tokens in text, leftmost-longest like HF's Aho-Corasick matcher: at each position the
/// longest token that starts there wins. Candidates are bucketed by first char and sorted longest first,
/// and a first-char bitmap rejects most positions with one array read.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly bool[] _first = new bool[65536];
    private readonly Dictionary<char, (string Text, int Id)[]> _byFirst;

    public AddedTokenMatcher(IEnumerable<(string Text, int Id)> tokens)
    {
        var groups = new Dictionary<char, List<(string, int)>>();
        foreach (var (text, id) in tokens)
        {
            if (text.Length == 0)
            {
                continue;
            }

            if (!groups.TryGetValue(text[0], out var list))
            {
                groups[text[0]] = list = [];
            }

            if (!list.Exists(t => t.Item1 == text))
            {
                list.Add((text, id));
            }

            _first[text[0]] = true;
        }

        _byFirst = groups.ToDictionary(g => g.Key, g => g.Value.OrderByDescending(t => t.Item1.Length).ToArray());
        Count = _byFirst.Values.Sum(v => v.Length);
    }

    public int Count { get; }

    /// <summary>True when a token starts at <paramref name="index"/>; gives the longest.</summary>
    public bool TryMatch(ReadOnlySpan<char> text, int index, out int length, out int id)
    {
        char c = text[index];
        if (_first[c])
        {
            ReadOnlySpan<char> rest = text[index..];
            foreach (var (t, tid) in _byFirst[c])
            {
                if (rest.StartsWith(t, StringComparison.Ordinal))
                {
                    length = t.Length;
                    id = tid;
                    return true;
                }
            }
        }

        length = 0;
        id = -1;
        return false;
    }

    public bool MayStart(char c) => _first[c];
}
