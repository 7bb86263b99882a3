namespace GemmaScope.Tokenizers;

/// <summary>Which end of a row receives padding in <see cref="GemmaTokenizer.EncodeBatch"/>.</summary>
public enum PaddingSide
{
    /// <summary>Tokens first, padding after (positions line up with the text; the usual choice for SAE analysis).</summary>
    Right,

    /// <summary>Padding first, tokens after (the layout batched generation uses).</summary>
    Left,
}

/// <summary>
/// A batch of encoded texts padded to one length, as row-major arrays
/// ([<see cref="BatchSize"/>, <see cref="SequenceLength"/>]) ready for a model input tensor.
/// </summary>
public sealed class GemmaBatch
{
    internal GemmaBatch(int batchSize, int sequenceLength, int[] inputIds, int[] attentionMask, int[] lengths)
    {
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        InputIds = inputIds;
        AttentionMask = attentionMask;
        Lengths = lengths;
    }

    /// <summary>Number of texts.</summary>
    public int BatchSize { get; }

    /// <summary>Length of every row: the longest text's token count.</summary>
    public int SequenceLength { get; }

    /// <summary>Token ids, row-major; padding positions hold the pad id.</summary>
    public int[] InputIds { get; }

    /// <summary>1 where a real token is, 0 at padding, row-major.</summary>
    public int[] AttentionMask { get; }

    /// <summary>Token count of each text before padding.</summary>
    public int[] Lengths { get; }

    /// <summary>The ids of row <paramref name="row"/>, padding included.</summary>
    public ReadOnlySpan<int> Row(int row) => InputIds.AsSpan(row * SequenceLength, SequenceLength);

    /// <summary>The attention mask of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<int> MaskRow(int row) => AttentionMask.AsSpan(row * SequenceLength, SequenceLength);
}
