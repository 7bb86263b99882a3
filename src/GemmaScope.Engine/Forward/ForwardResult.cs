namespace GemmaScope.Engine;

/// <summary>The outcome of <see cref="GemmaEngine.Forward"/>: the logits asked for and the call's row layout. Immutable.</summary>
public sealed class ForwardResult
{
    private readonly CallLayout _layout;

    internal ForwardResult(CallLayout layout, LogitsMode mode, int vocab, float[]? logits)
    {
        _layout = layout;
        Mode = mode;
        Vocab = vocab;
        Logits = logits;
    }

    /// <summary>
    /// Soft-capped logits: [sequences, vocab] for <see cref="LogitsMode.LastRow"/>, [total rows, vocab] for
    /// <see cref="LogitsMode.AllRows"/>, null for <see cref="LogitsMode.None"/> or a call stopped early.
    /// </summary>
    public float[]? Logits { get; }

    /// <summary>Which logits were computed.</summary>
    public LogitsMode Mode { get; }

    /// <summary>Vocabulary size (the width of a logits row).</summary>
    public int Vocab { get; }

    /// <summary>Number of sequences.</summary>
    public int SequenceCount => _layout.SequenceCount;

    /// <summary>Number of rows of the call (all sequences' new tokens).</summary>
    public int TotalRows => _layout.TotalRows;

    /// <summary>First row of sequence <paramref name="seq"/> among the call's rows (and among the logits rows of <see cref="LogitsMode.AllRows"/>).</summary>
    public int RowStart(int seq) => _layout.RowStart(seq);

    /// <summary>Rows of sequence <paramref name="seq"/> in this call.</summary>
    public int RowCount(int seq) => _layout.RowCount(seq);

    /// <summary>The absolute position of sequence <paramref name="seq"/>'s first row (its cache length before the call).</summary>
    public int StartPosition(int seq) => _layout.PastLengths[seq];

    /// <summary>
    /// Logits of sequence <paramref name="seq"/>: its last row ([vocab]) with <see cref="LogitsMode.LastRow"/>, all its rows
    /// ([rows, vocab]) with <see cref="LogitsMode.AllRows"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No logits were computed.</exception>
    public ReadOnlySpan<float> SequenceLogits(int seq)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(seq);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(seq, SequenceCount);
        var l = Logits ?? throw new InvalidOperationException("This call computed no logits (LogitsMode.None or StopAfterLayer).");
        return Mode == LogitsMode.LastRow
            ? l.AsSpan(seq * Vocab, Vocab)
            : l.AsSpan(RowStart(seq) * Vocab, RowCount(seq) * Vocab);
    }

    /// <summary>The logits of sequence <paramref name="seq"/>'s last row ([vocab]), whichever mode computed them.</summary>
    public ReadOnlySpan<float> LastLogits(int seq)
    {
        var s = SequenceLogits(seq);
        return s[^Vocab..];
    }
}
