namespace GemmaScope.Engine;

/// <summary>The packed rows of one call: where each sequence starts, and each row's position, token and sequence.</summary>
internal sealed class CallLayout
{
    public CallLayout(IReadOnlyList<int[]> sequences, int[] pastLengths)
    {
        SequenceCount = sequences.Count;
        Starts = new int[SequenceCount + 1];
        PastLengths = pastLengths;
        for (int s = 0; s < SequenceCount; s++)
        {
            Starts[s + 1] = Starts[s] + sequences[s].Length;
        }

        TotalRows = Starts[SequenceCount];
        Positions = new int[TotalRows];
        Tokens = new int[TotalRows];
        SequenceOfRow = new int[TotalRows];
        for (int s = 0; s < SequenceCount; s++)
        {
            var ids = sequences[s];
            for (int i = 0; i < ids.Length; i++)
            {
                int r = Starts[s] + i;
                Positions[r] = pastLengths[s] + i;
                Tokens[r] = ids[i];
                SequenceOfRow[r] = s;
                MaxKeys = Math.Max(MaxKeys, pastLengths[s] + ids.Length);
            }
        }
    }

    public int SequenceCount { get; }

    public int TotalRows { get; }

    /// <summary>Cached tokens of each sequence before this call.</summary>
    public int[] PastLengths { get; }

    /// <summary>Row starts, SequenceCount + 1 entries.</summary>
    public int[] Starts { get; }

    public int[] Positions { get; }

    public int[] Tokens { get; }

    public int[] SequenceOfRow { get; }

    /// <summary>The longest key range of any sequence (cached + new tokens).</summary>
    public int MaxKeys { get; }

    public int RowStart(int seq) => Starts[seq];

    public int RowCount(int seq) => Starts[seq + 1] - Starts[seq];
}
