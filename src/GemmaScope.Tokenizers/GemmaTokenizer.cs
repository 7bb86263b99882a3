using System.Buffers;
using System.Text;
using GemmaScope.Tokenizers.Loading;
using GemmaScope.Tokenizers.Model;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Tokenizers;

/// <summary>
/// Gemma's tokenizer, managed and exact: gives the ids Hugging Face's <c>tokenizer(text).input_ids</c> gives
/// (from tokenizer.json), or SentencePiece gives (from tokenizer.model), with each token's char span and display text.
/// Added and special tokens (<c>&lt;start_of_turn&gt;</c>, newline and tab runs, ...) are matched in the text first,
/// longest first; the rest is normalized (space to U+2581) and BPE-merged in rank order, with &lt;0xNN&gt; byte fallback.
/// Derives from <see cref="Tokenizer"/>, so code written against Microsoft.ML.Tokenizers takes it.
/// Immutable after loading: all members are safe to call from several threads at once.
/// </summary>
[System.Diagnostics.DebuggerDisplay("{ToString(),nq}")]
public sealed class GemmaTokenizer : Tokenizer
{
    private readonly TokenizerData _data;
    private readonly RunCache? _cache;

    private GemmaTokenizer(TokenizerData data, GemmaTokenizerOptions? options)
    {
        _data = data;
        int capacity = options?.CacheCapacity ?? GemmaTokenizerOptions.DefaultCacheCapacity;
        ArgumentOutOfRangeException.ThrowIfNegative(capacity, nameof(options));
        _cache = capacity > 0 ? new RunCache(capacity) : null;
    }

    /// <summary>The file (or stream name) this tokenizer was loaded from.</summary>
    public string SourceName => _data.Source;

    /// <summary>Number of ids (256,000 for Gemma 2).</summary>
    public int VocabularySize => _data.VocabularySize;

    /// <summary>Id of &lt;bos&gt; (2 for Gemma), or -1.</summary>
    public int BeginningOfSentenceId => _data.BosId;

    /// <summary>Id of &lt;eos&gt; (1 for Gemma), or -1.</summary>
    public int EndOfSentenceId => _data.EosId;

    /// <summary>Id of &lt;pad&gt; (0 for Gemma), used by <see cref="EncodeBatch"/>; -1 if none.</summary>
    public int PaddingId => _data.PadId;

    /// <summary>Id of &lt;unk&gt; (3 for Gemma), or -1.</summary>
    public int UnknownId => _data.UnknownId;

    /// <summary>Whether encoding prepends &lt;bos&gt; (add_bos_token).</summary>
    public bool AddsBeginningOfSentence => _data.PrefixIds.Length > 0;

    /// <summary>Whether encoding appends &lt;eos&gt; (add_eos_token).</summary>
    public bool AddsEndOfSentence => _data.SuffixIds.Length > 0;

    /// <summary>True when loaded from tokenizer.model: control tokens such as &lt;bos&gt; written in the text are then not parsed (as in SentencePiece).</summary>
    public bool IsSentencePieceModel => _data.Algorithm == MergeAlgorithm.PieceScores;

    /// <summary>Source, vocabulary size and format, e.g. <c>GemmaTokenizer(tokenizer.json, 256000 ids, BOS added)</c>.</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"GemmaTokenizer({SourceName}, {VocabularySize} ids{(IsSentencePieceModel ? ", SentencePiece model" : "")}{(AddsBeginningOfSentence ? ", BOS added" : "")}{(AddsEndOfSentence ? ", EOS added" : "")})");

    /// <summary>Loads a Hugging Face tokenizer.json.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">The file is not a tokenizer.json this class reproduces exactly.</exception>
    public static GemmaTokenizer FromTokenizerJson(string path, GemmaTokenizerOptions? options = null) =>
        new(TokenizerJsonLoader.Load(ReadFile(path), path, options?.AddBeginningOfSentence, options?.AddEndOfSentence), options);

    /// <summary>Loads a Hugging Face tokenizer.json from a stream (read to its end, not disposed).</summary>
    /// <param name="stream">The JSON.</param>
    /// <param name="options">Loading options.</param>
    /// <param name="sourceName">Name used in error messages.</param>
    public static GemmaTokenizer FromTokenizerJson(Stream stream, GemmaTokenizerOptions? options = null, string sourceName = "tokenizer.json stream") =>
        new(TokenizerJsonLoader.Load(ReadStream(stream, sourceName), sourceName, options?.AddBeginningOfSentence, options?.AddEndOfSentence), options);

    /// <summary>Loads a SentencePiece tokenizer.model (BPE, identity normalizer, as Gemma's).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="TokenizerFormatException">The file is not a SentencePiece BPE model this class reproduces exactly.</exception>
    public static GemmaTokenizer FromSentencePieceModel(string path, GemmaTokenizerOptions? options = null) =>
        new(SentencePieceModelLoader.Load(ReadFile(path), path, options?.AddBeginningOfSentence, options?.AddEndOfSentence), options);

    /// <summary>Loads a SentencePiece tokenizer.model from a stream (read to its end, not disposed).</summary>
    /// <param name="stream">The protobuf bytes.</param>
    /// <param name="options">Loading options.</param>
    /// <param name="sourceName">Name used in error messages.</param>
    public static GemmaTokenizer FromSentencePieceModel(Stream stream, GemmaTokenizerOptions? options = null, string sourceName = "tokenizer.model stream") =>
        new(SentencePieceModelLoader.Load(ReadStream(stream, sourceName), sourceName, options?.AddBeginningOfSentence, options?.AddEndOfSentence), options);

    /// <summary>
    /// Loads a tokenizer from a file or a model folder. A folder: its tokenizer.json, else its tokenizer.model;
    /// add_bos_token / add_eos_token of a tokenizer_config.json beside them apply (as in transformers) unless
    /// <paramref name="options"/> sets them. A file: JSON if it starts with '{', a SentencePiece model otherwise.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>, or a folder with neither file.</exception>
    /// <exception cref="TokenizerFormatException">The file is not a tokenizer this class reproduces exactly.</exception>
    public static GemmaTokenizer Load(string path, GemmaTokenizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            string json = Path.Combine(path, "tokenizer.json");
            string model = Path.Combine(path, "tokenizer.model");
            options = WithConfig(Path.Combine(path, "tokenizer_config.json"), options);
            return File.Exists(json) ? FromTokenizerJson(json, options)
                : File.Exists(model) ? FromSentencePieceModel(model, options)
                : throw new FileNotFoundException($"{path}: the folder holds neither tokenizer.json nor tokenizer.model.", json);
        }

        byte[] data = ReadFile(path);
        int i = data.AsSpan().IndexOfAnyExcept(" \t\r\n"u8);
        bool isJson = i >= 0 && (data[i] == (byte)'{' || (data[i] == 0xEF && data.AsSpan(i).StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF, (byte)'{'])));
        return new(isJson
            ? TokenizerJsonLoader.Load(data, path, options?.AddBeginningOfSentence, options?.AddEndOfSentence)
            : SentencePieceModelLoader.Load(data, path, options?.AddBeginningOfSentence, options?.AddEndOfSentence), options);
    }

    private static GemmaTokenizerOptions? WithConfig(string configPath, GemmaTokenizerOptions? options)
    {
        if (!File.Exists(configPath))
        {
            return options;
        }

        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(configPath));
            bool? Flag(string name) =>
                doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty(name, out var v)
                    ? v.ValueKind switch
                    {
                        System.Text.Json.JsonValueKind.True => true,
                        System.Text.Json.JsonValueKind.False => false,
                        System.Text.Json.JsonValueKind.Null => null,
                        _ => throw new TokenizerFormatException(configPath, $"{name} should be true or false, not {v.GetRawText()}."),
                    }
                    : null;
            options ??= new GemmaTokenizerOptions();
            return options with
            {
                AddBeginningOfSentence = options.AddBeginningOfSentence ?? Flag("add_bos_token"),
                AddEndOfSentence = options.AddEndOfSentence ?? Flag("add_eos_token"),
            };
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new TokenizerFormatException(configPath, $"malformed JSON: {e.Message}", e);
        }
    }

    /// <summary>The id of a token string (piece), or null.</summary>
    public int? TokenToId(string token) => _data.PieceToId.TryGetValue(token, out int id) ? id : null;

    /// <summary>The token string (piece) of an id, e.g. "▁Tower", "&lt;0xE6&gt;".</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string IdToToken(int id) => _data.Pieces[CheckId(id)];

    /// <summary>
    /// Appends the ids of <paramref name="text"/> to <paramref name="ids"/>: &lt;bos&gt; first when
    /// <paramref name="addSpecialTokens"/> and the file says so. No allocation per call once the list has grown.
    /// </summary>
    /// <returns>The number of ids appended.</returns>
    public int EncodeToIds(ReadOnlySpan<char> text, List<int> ids, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        TokenBuffer buf = EncodeInto(text, addSpecialTokens, normalize: true);
        ids.AddRange(buf.Ids.AsSpan(0, buf.Count));
        return buf.Count;
    }

    /// <summary>The ids of <paramref name="text"/>, exactly Hugging Face's input_ids (with <paramref name="addSpecialTokens"/> as its add_special_tokens).</summary>
    public int[] EncodeToIdArray(ReadOnlySpan<char> text, bool addSpecialTokens = true)
    {
        TokenBuffer buf = EncodeInto(text, addSpecialTokens, normalize: true);
        return buf.Ids.AsSpan(0, buf.Count).ToArray();
    }

    /// <summary>
    /// Encodes <paramref name="text"/> with each token's id, display string and char span [Start, End).
    /// The spans cover the text in order without gaps or overlaps; &lt;bos&gt; has the empty span [0, 0),
    /// and a character that falls back to several byte tokens gives its span to the last of them.
    /// </summary>
    public GemmaToken[] EncodeWithSpans(ReadOnlySpan<char> text, bool addSpecialTokens = true)
    {
        TokenBuffer buf = EncodeInto(text, addSpecialTokens, normalize: true);
        var tokens = new GemmaToken[buf.Count];
        for (int i = 0; i < buf.Count; i++)
        {
            tokens[i] = new GemmaToken(buf.Ids[i], DisplayOf(text, buf, i), buf.Starts[i], buf.Ends[i]);
        }

        return tokens;
    }

    /// <summary>Encodes a conversation with Gemma's chat template; equals HF's <c>apply_chat_template(messages, tokenize=True)</c>.</summary>
    public int[] EncodeChat(IEnumerable<GemmaChatMessage> messages, bool addGenerationPrompt = true) =>
        EncodeToIdArray(GemmaChatTemplate.Format(messages, addGenerationPrompt));

    /// <summary>
    /// Encodes several texts and pads them to the longest with <see cref="PaddingId"/>; the attention mask is 1 on
    /// tokens and 0 on padding. Nothing is truncated.
    /// </summary>
    /// <exception cref="InvalidOperationException">The vocabulary has no pad token.</exception>
    public GemmaBatch EncodeBatch(IReadOnlyList<string> texts, PaddingSide padding = PaddingSide.Right, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (_data.PadId < 0)
        {
            throw new InvalidOperationException($"{_data.Source}: the vocabulary has no <pad> token, so a batch cannot be padded.");
        }

        var rows = new int[texts.Count][];
        int longest = 0;
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = EncodeToIdArray(texts[i] ?? throw new ArgumentException($"texts[{i}] is null.", nameof(texts)), addSpecialTokens);
            longest = Math.Max(longest, rows[i].Length);
        }

        var ids = new int[rows.Length * longest];
        var mask = new int[rows.Length * longest];
        var lengths = new int[rows.Length];
        ids.AsSpan().Fill(_data.PadId);
        for (int i = 0; i < rows.Length; i++)
        {
            int at = (i * longest) + (padding == PaddingSide.Right ? 0 : longest - rows[i].Length);
            rows[i].CopyTo(ids, at);
            mask.AsSpan(at, rows[i].Length).Fill(1);
            lengths[i] = rows[i].Length;
        }

        return new GemmaBatch(rows.Length, longest, ids, mask, lengths);
    }

    /// <summary>
    /// Decodes ids as the inverse of encoding: drops the &lt;bos&gt; (and &lt;eos&gt;) that encoding adds at the
    /// ends, and writes every other token as text (HF's decode with skip_special_tokens=False), so
    /// <c>Decode(EncodeToIds(text)) == text</c> for valid UTF-16 text (a literal U+2581 in the text comes back
    /// as a space, as with HF's decoder).
    /// </summary>
    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int[] array = ids as int[] ?? [.. ids];
        ReadOnlySpan<int> span = array;
        if (_data.PrefixIds.Length > 0 && span.StartsWith(_data.PrefixIds))
        {
            span = span[_data.PrefixIds.Length..];
        }

        if (_data.SuffixIds.Length > 0 && span.EndsWith(_data.SuffixIds))
        {
            span = span[..^_data.SuffixIds.Length];
        }

        return Decode(span, skipSpecialTokens: false);
    }

    /// <summary>
    /// Decodes ids exactly as Hugging Face's <c>tokenizer.decode(ids, skip_special_tokens)</c> does with Gemma's
    /// decoder: U+2581 becomes a space, runs of byte tokens become their UTF-8 text (each byte of an invalid run
    /// becomes U+FFFD), and nothing else changes.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var sb = new StringBuilder(ids.Length * 4);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            CheckId(id);
            if (skipSpecialTokens && _data.IsSpecial[id])
            {
                continue;
            }

            short b = _data.IdToByte[id];
            if (b >= 0)
            {
                bytes.Add((byte)b);
                continue;
            }

            FlushBytes(sb, bytes);
            AppendPiece(sb, _data.Pieces[id]);
        }

        FlushBytes(sb, bytes);
        return sb.ToString();
    }

    /// <inheritdoc/>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        // Decode the longest prefix of ids whose text fits, never splitting a byte run's character.
        ArgumentNullException.ThrowIfNull(ids);
        int[] array = ids as int[] ?? [.. ids];
        idsConsumed = 0;
        charsWritten = 0;
        string all = Decode(array);
        if (all.Length <= destination.Length)
        {
            all.CopyTo(destination);
            idsConsumed = array.Length;
            charsWritten = all.Length;
            return OperationStatus.Done;
        }

        for (int n = array.Length - 1; n >= 0; n--)
        {
            string part = Decode(array.AsSpan(0, n).ToArray());
            if (part.Length <= destination.Length && (n == 0 || _data.IdToByte[array[n]] < 0))
            {
                part.CopyTo(destination);
                idsConsumed = n;
                charsWritten = part.Length;
                break;
            }
        }

        return OperationStatus.DestinationTooSmall;
    }

    /// <inheritdoc/>
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        ReadOnlySpan<char> t = text is null ? textSpan : text.AsSpan();
        TokenBuffer buf = EncodeInto(t, addSpecialTokens: true, settings.ConsiderNormalization);
        int count = Limit(buf, settings.MaxTokenCount);
        var tokens = new EncodedToken[count];
        for (int i = 0; i < count; i++)
        {
            tokens[i] = new EncodedToken(buf.Ids[i], _data.Pieces[buf.Ids[i]], new Range(buf.Starts[i], buf.Ends[i]));
        }

        return new EncodeResults<EncodedToken> { Tokens = tokens, NormalizedText = null, CharsConsumed = CharsConsumed(buf, count, t.Length) };
    }

    /// <inheritdoc/>
    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        ReadOnlySpan<char> t = text is null ? textSpan : text.AsSpan();
        TokenBuffer buf = EncodeInto(t, addSpecialTokens: true, settings.ConsiderNormalization);
        int count = Limit(buf, settings.MaxTokenCount);
        return new EncodeResults<int> { Tokens = buf.Ids.AsSpan(0, count).ToArray(), NormalizedText = null, CharsConsumed = CharsConsumed(buf, count, t.Length) };
    }

    /// <inheritdoc/>
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        ReadOnlySpan<char> t = text is null ? textSpan : text.AsSpan();
        TokenBuffer buf = EncodeInto(t, addSpecialTokens: true, settings.ConsiderNormalization);
        return Limit(buf, settings.MaxTokenCount);
    }

    private TokenBuffer EncodeInto(ReadOnlySpan<char> text, bool addSpecialTokens, bool normalize)
    {
        EncodeScratch s = EncodeScratch.Get();
        BpeEncoder.Encode(_data, _cache, text, addSpecialTokens, normalize, s, s.Output);
        s.TrimAfterEncode();
        return s.Output;
    }

    /// <summary>Token count within maxTokenCount that does not cut a character's byte tokens apart.</summary>
    private static int Limit(TokenBuffer buf, int maxTokenCount)
    {
        if (maxTokenCount <= 0 || maxTokenCount >= buf.Count)
        {
            return buf.Count;
        }

        int n = maxTokenCount;
        while (n > 0 && buf.Partial[n - 1])
        {
            n--;
        }

        return n;
    }

    private static int CharsConsumed(TokenBuffer buf, int count, int textLength) =>
        count == buf.Count ? textLength : count == 0 ? 0 : buf.Ends[count - 1];

    private string DisplayOf(ReadOnlySpan<char> text, TokenBuffer buf, int i)
    {
        int id = buf.Ids[i];
        if (_data.IdToByte[id] >= 0)
        {
            // The last byte token of a character shows the character; the ones before it show nothing.
            return buf.Partial[i] ? string.Empty : text[buf.Starts[i]..buf.Ends[i]].ToString();
        }

        return _data.Pieces[id].Replace('\u2581', ' ');
    }

    private static void AppendPiece(StringBuilder sb, string piece)
    {
        foreach (char c in piece)
        {
            sb.Append(c == '\u2581' ? ' ' : c);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static void FlushBytes(StringBuilder sb, List<byte> bytes)
    {
        if (bytes.Count == 0)
        {
            return;
        }

        // HF's ByteFallback decoder: a run that is valid UTF-8 becomes its text, otherwise one U+FFFD per byte.
        try
        {
            sb.Append(StrictUtf8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
        }
        catch (DecoderFallbackException)
        {
            sb.Append('\uFFFD', bytes.Count);
        }

        bytes.Clear();
    }

    private int CheckId(int id) =>
        (uint)id < (uint)_data.VocabularySize ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary of {_data.VocabularySize} ids ({_data.Source}).");

    private static byte[] ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(Directory.Exists(path) ? $"{path} is a folder; use GemmaTokenizer.Load for a model folder." : $"Tokenizer file not found: {path}", path);
        }

        return File.ReadAllBytes(path);
    }

    private static byte[] ReadStream(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            using var ms = new MemoryStream();
            stream.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new TokenizerFormatException(sourceName, $"the stream could not be read: {e.Message}", e);
        }
    }
}
