using System.Collections.Concurrent;

namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// Remembers the tokens of short text runs (the text between added tokens, after normalization), as
/// Hugging Face's BPE does with its word cache: repeated lines, turns and snippets then cost one hash
/// lookup instead of a BPE merge loop. Bounded: once full it stops adding (as HF's cache does), so memory
/// stays below capacity x <see cref="MaxRunLength"/> chars. Thread-safe.
/// </summary>
internal sealed class RunCache
{
    /// <summary>Runs longer than this are not cached (HF: MAX_LENGTH = 256).</summary>
    public const int MaxRunLength = 256;

    private const int PartialFlag = 1 << 30;
    private readonly ConcurrentDictionary<string, int[]> _map = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int _capacity;
    private int _count;

    public RunCache(int capacity)
    {
        _capacity = capacity;
        _lookup = _map.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Appends the cached tokens of <paramref name="run"/> (which starts at <paramref name="offset"/>) and returns true, or returns false.</summary>
    public bool TryEmit(ReadOnlySpan<char> run, int offset, TokenBuffer output)
    {
        if (!_lookup.TryGetValue(run, out int[]? packed))
        {
            return false;
        }

        for (int i = 0; i < packed.Length; i += 3)
        {
            int end = packed[i + 2];
            output.Add(packed[i], packed[i + 1] + offset, (end & ~PartialFlag) + offset, (end & PartialFlag) != 0);
        }

        return true;
    }

    /// <summary>Remembers output tokens [from, output.Count) as the tokens of <paramref name="run"/>.</summary>
    public void Add(ReadOnlySpan<char> run, TokenBuffer output, int from, int offset)
    {
        if (Volatile.Read(ref _count) >= _capacity)
        {
            return;
        }

        int n = output.Count - from;
        var packed = new int[n * 3];
        for (int i = 0; i < n; i++)
        {
            int k = from + i;
            packed[3 * i] = output.Ids[k];
            packed[(3 * i) + 1] = output.Starts[k] - offset;
            packed[(3 * i) + 2] = (output.Ends[k] - offset) | (output.Partial[k] ? PartialFlag : 0);
        }

        if (_map.TryAdd(run.ToString(), packed))
        {
            Interlocked.Increment(ref _count);
        }
    }
}
