namespace GemmaScope.Tokenizers;

/// <summary>One token of an encoded text.</summary>
/// <param name="Id">The token id (what the model reads).</param>
/// <param name="Display">
/// What the token shows: its piece with U+2581 as a space; a run of byte-fallback tokens shows the
/// character they encode on its last byte token and an empty string on the others; BOS/EOS show their piece.
/// </param>
/// <param name="Start">Index of the first input char the token covers.</param>
/// <param name="End">Index one past the last input char it covers (Start == End for BOS and leading byte tokens).</param>
public readonly record struct GemmaToken(int Id, string Display, int Start, int End)
{
    /// <summary>Number of input chars the token covers.</summary>
    public int Length => End - Start;
}
