namespace GemmaScope.Engine;

/// <summary>
/// Describes the rows handed to <see cref="IForwardHooks.OnHook"/>: their width and which sequence, position and token
/// each row is. A view of the call's layout, valid during the hook call.
/// </summary>
public readonly struct HookSite
{
    private readonly CallLayout _layout;

    internal HookSite(CallLayout layout, int width, int keyPositions)
    {
        _layout = layout;
        Width = width;
        KeyPositions = keyPositions;
    }

    /// <summary>
    /// Floats per row. For <c>attn.hook_attn_scores</c> and <c>hook_pattern</c>: heads × <see cref="KeyPositions"/>
    /// (head-major; column j of a head is the key at absolute position j of the row's sequence).
    /// </summary>
    public int Width { get; }

    /// <summary>
    /// For scores and patterns: key positions per head in a row, the longest sequence's cached + new length in this call
    /// (shorter sequences' rows are filled with −∞ scores and 0 pattern past their own length). 0 for other hooks.
    /// </summary>
    public int KeyPositions { get; }

    /// <summary>Number of rows (all sequences).</summary>
    public int TotalRows => _layout.TotalRows;

    /// <summary>Number of sequences in the call.</summary>
    public int SequenceCount => _layout.SequenceCount;

    /// <summary>First row of sequence <paramref name="seq"/>.</summary>
    public int RowStart(int seq) => _layout.RowStart(seq);

    /// <summary>Rows of sequence <paramref name="seq"/> (its new tokens).</summary>
    public int RowCount(int seq) => _layout.RowCount(seq);

    /// <summary>The absolute position of a row in its sequence (cached tokens counted).</summary>
    public int Position(int row) => _layout.Positions[row];

    /// <summary>The token id of a row.</summary>
    public int TokenId(int row) => _layout.Tokens[row];

    /// <summary>The sequence a row belongs to.</summary>
    public int Sequence(int row) => _layout.SequenceOfRow[row];
}
