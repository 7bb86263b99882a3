namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// Growable output of one encode call: id and char span [start, end) per token. Reused across calls
/// (see <see cref="EncodeScratch"/>), so encoding allocates nothing per token.
/// A multi-byte character that falls back to byte tokens gives its span to its last byte token;
/// the bytes before it get an empty span at the character's start and are marked partial.
/// </summary>
internal sealed class TokenBuffer
{
    public int[] Ids = new int[256];
    public int[] Starts = new int[256];
    public int[] Ends = new int[256];
    public bool[] Partial = new bool[256];
    public int Count;

    public void Clear() => Count = 0;

    public void Add(int id, int start, int end, bool partial = false)
    {
        if (Count == Ids.Length)
        {
            Grow();
        }

        Ids[Count] = id;
        Starts[Count] = start;
        Ends[Count] = end;
        Partial[Count] = partial;
        Count++;
    }

    private void Grow()
    {
        int n = Ids.Length * 2;
        Array.Resize(ref Ids, n);
        Array.Resize(ref Starts, n);
        Array.Resize(ref Ends, n);
        Array.Resize(ref Partial, n);
    }
}

/// <summary>Per-thread working memory of the encoder, so that encoding is thread-safe and allocation-free once warm.</summary>
internal sealed class EncodeScratch
{
    [ThreadStatic]
    private static EncodeScratch? t_instance;

    public int[] Id = new int[256];
    public int[] Start = new int[256];
    public int[] End = new int[256];
    public int[] Prev = new int[256];
    public int[] Next = new int[256];
    public int[] PairRank = new int[256];
    public int[] PairResult = new int[256];
    public long[] Heap = new long[768];
    public char[] Normalized = new char[256];
    public readonly TokenBuffer Output = new();

    /// <summary>Above this many entries a thread's buffers are dropped after use, so one huge text does not pin memory for the thread's life.</summary>
    private const int KeepLimit = 1 << 16;

    /// <summary>This thread's scratch; a previous call's oversized output buffer is not kept.</summary>
    public static EncodeScratch Get()
    {
        var s = t_instance;
        if (s is null || s.Output.Ids.Length > KeepLimit)
        {
            t_instance = s = new EncodeScratch();
        }

        return s;
    }

    /// <summary>Releases oversized merge working arrays once an encode is done (the output stays until the next call).</summary>
    public void TrimAfterEncode()
    {
        if (Id.Length > KeepLimit)
        {
            Id = new int[256];
            Start = new int[256];
            End = new int[256];
            Prev = new int[256];
            Next = new int[256];
            PairRank = new int[256];
            PairResult = new int[256];
            Heap = new long[768];
        }

        if (Normalized.Length > KeepLimit)
        {
            Normalized = new char[256];
        }
    }

    public void EnsureSymbols(int n)
    {
        if (Id.Length >= n)
        {
            return;
        }

        int size = Math.Max(n, Id.Length * 2);
        Id = new int[size];
        Start = new int[size];
        End = new int[size];
        Prev = new int[size];
        Next = new int[size];
        PairRank = new int[size];
        PairResult = new int[size];
        Heap = new long[size * 3];
    }

    public void EnsureText(int n)
    {
        if (Normalized.Length < n)
        {
            Normalized = new char[Math.Max(n, Normalized.Length * 2)];
        }
    }
}
