using System.Text;

namespace GemmaScope.Tokenizers.Model;

/// <summary>Which merge algorithm a vocabulary follows.</summary>
internal enum MergeAlgorithm
{
    /// <summary>Hugging Face BPE: listed merges applied in rank order.</summary>
    RankedMerges,

    /// <summary>SentencePiece BPE: any adjacent pair whose concatenation is a piece, highest score first.</summary>
    PieceScores,
}

/// <summary>
/// Immutable vocabulary and rules of one tokenizer file. Built once by a loader, then only read,
/// so one instance is safe to share between threads.
/// </summary>
internal sealed class TokenizerData
{
    public required string Source { get; init; }
    public required MergeAlgorithm Algorithm { get; init; }
    public required string[] Pieces { get; init; }
    public required Dictionary<string, int> PieceToId { get; init; }

    /// <summary>Tokens matched in the text before BPE (HF added tokens, or SentencePiece user-defined pieces).</summary>
    public required AddedTokenMatcher Added { get; init; }

    /// <summary>Ids that HF's decode drops when skip_special_tokens is set.</summary>
    public required bool[] IsSpecial { get; init; }

    /// <summary>Ranked merges (RankedMerges only).</summary>
    public MergeTable? Merges { get; init; }

    /// <summary>Per id: priority rank of the piece's score, 0 = highest score, -1 = not a merge target (PieceScores only).</summary>
    public int[]? ScoreRank { get; init; }

    public required int UnknownId { get; init; }
    public required bool FuseUnknown { get; init; }
    public required bool ByteFallback { get; init; }

    /// <summary>Replace U+0020 with U+2581 before BPE (Gemma's normalizer / SentencePiece's escape_whitespaces).</summary>
    public required bool EscapeSpaces { get; init; }

    public required int[] PrefixIds { get; init; }
    public required int[] SuffixIds { get; init; }
    public required int BosId { get; init; }
    public required int EosId { get; init; }
    public required int PadId { get; init; }

    /// <summary>Id of every single-UTF-16-char piece, -1 where none: one array read per char instead of a hash lookup.</summary>
    public int[] BmpToId { get; private set; } = [];

    /// <summary>Id of each byte-fallback token &lt;0xNN&gt;, -1 where missing.</summary>
    public int[] ByteToId { get; private set; } = [];

    /// <summary>Per id: the byte a &lt;0xNN&gt; token stands for, -1 for other tokens.</summary>
    public short[] IdToByte { get; private set; } = [];

    public Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; private set; }

    public int VocabularySize => Pieces.Length;

    /// <summary>Builds the derived lookup tables; call once after construction.</summary>
    public TokenizerData Seal()
    {
        Lookup = PieceToId.GetAlternateLookup<ReadOnlySpan<char>>();
        var bmp = new int[65536];
        Array.Fill(bmp, -1);
        var byteToId = new int[256];
        Array.Fill(byteToId, -1);
        var idToByte = new short[Pieces.Length];
        Array.Fill(idToByte, (short)-1);
        for (int id = 0; id < Pieces.Length; id++)
        {
            string p = Pieces[id];
            if (p is null)
            {
                continue;
            }

            if (p.Length == 1 && PieceToId.TryGetValue(p, out int mapped) && mapped == id)
            {
                bmp[p[0]] = id;
            }
            else if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>'
                && byte.TryParse(p.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b)
                && IsUpperHex(p[3]) && IsUpperHex(p[4]))
            {
                // Only the upper-case spelling <0xAB> is a byte token, as in HF's format!("<{:#04X}>").
                byteToId[b] = id;
                idToByte[id] = b;
            }
        }

        BmpToId = bmp;
        ByteToId = byteToId;
        IdToByte = idToByte;
        return this;
    }

    private static bool IsUpperHex(char c) => char.IsAsciiDigit(c) || c is >= 'A' and <= 'F';

    /// <summary>Id of a piece, or -1.</summary>
    public int Find(ReadOnlySpan<char> piece) => Lookup.TryGetValue(piece, out int id) ? id : -1;

    /// <summary>The piece quoted for an error message, control characters escaped; a prefix of it beyond 80 characters.</summary>
    internal static string Describe(string s)
    {
        var sb = new StringBuilder(Math.Min(s.Length, 80) + 32);
        sb.Append('\'');
        foreach (char c in s.AsSpan(0, Math.Min(s.Length, 80)))
        {
            if (c < ' ')
            {
                sb.Append(c switch { '\n' => "\\n", '\t' => "\\t", '\r' => "\\r", _ => $"\\u{(int)c:X4}" });
            }
            else
            {
                sb.Append(c);
            }
        }

        sb.Append('\'');
        return s.Length > 80 ? sb.Append($"… ({s.Length} characters)").ToString() : sb.ToString();
    }
}
