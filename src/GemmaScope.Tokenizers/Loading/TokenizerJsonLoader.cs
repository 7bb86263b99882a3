using System.Text.Json;
using GemmaScope.Tokenizers.Model;

namespace GemmaScope.Tokenizers.Loading;

/// <summary>
/// Reads a Hugging Face tokenizer.json with a forward-only <see cref="Utf8JsonReader"/> (no DOM for the
/// 256k-entry vocabulary and 580k merges), and accepts only what it reproduces exactly: a BPE model,
/// a space -> U+2581 Replace normalizer (or none), no effective pre-tokenizer, plain added tokens,
/// and a TemplateProcessing post-processor.
/// </summary>
internal static class TokenizerJsonLoader
{
    private sealed class Added
    {
        public int Id = -1;
        public string? Content;
        public bool Special;
        public bool Normalized;
        public bool Lstrip;
        public bool Rstrip;
        public bool SingleWord;
    }

    public static TokenizerData Load(byte[] json, string source, bool? addBos, bool? addEos)
    {
        ReadOnlySpan<byte> span = json;
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            span = span[3..];
        }

        int first = 0;
        while (first < span.Length && span[first] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            first++;
        }

        if (first == span.Length)
        {
            throw new TokenizerFormatException(source, "the file is empty, not a tokenizer.json.");
        }

        if (span[first] != (byte)'{')
        {
            throw new TokenizerFormatException(source, $"not a tokenizer.json: expected a JSON object, but the file starts with byte 0x{span[first]:X2}.");
        }

        // JSON text is UTF-8 (RFC 8259); System.Text.Json would otherwise fail on the first bad string it transcodes.
        if (!System.Text.Unicode.Utf8.IsValid(span))
        {
            throw new TokenizerFormatException(source, "the file is not valid UTF-8 text.");
        }

        var reader = new Utf8JsonReader(span, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, MaxDepth = 256 });
        try
        {
            var data = Parse(ref reader, source, addBos, addEos, span.Length);

            // One JSON value: the reader refuses a second one after the root with a JsonException.
            if (reader.Read())
            {
                throw new TokenizerFormatException(source, $"a second JSON value follows the root object at byte {reader.TokenStartIndex}.");
            }

            return data;
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(source, $"malformed or truncated JSON near byte {reader.BytesConsumed}: {Short(e.Message)}", e);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json cannot turn a string into UTF-16 (an escaped lone surrogate, "\ud800"); the loader
            // itself throws only TokenizerFormatException.
            throw new TokenizerFormatException(source, $"malformed JSON string near byte {reader.BytesConsumed}: {Short(e.Message)}", e);
        }
    }

    private static TokenizerData Parse(ref Utf8JsonReader r, string source, bool? addBos, bool? addEos, int fileBytes)
    {
        Read(ref r);
        var topKeys = new HashSet<string>(StringComparer.Ordinal);
        var modelKeys = new HashSet<string>(StringComparer.Ordinal);
        var added = new List<Added>();
        JsonDocument? normalizer = null, preTokenizer = null, postProcessor = null;
        bool sawModel = false;
        string? modelType = null, unkToken = null;
        bool byteFallback = false, fuseUnk = false;
        Dictionary<string, int>? vocab = null;
        List<(string, string)>? pendingMerges = null;
        (int[] L, int[] R, int[] Res)? merges = null;
        while (Read(ref r) == JsonTokenType.PropertyName)
        {
            string name = r.GetString()!;
            if (!topKeys.Add(name))
            {
                throw new TokenizerFormatException(source, $"the field \"{Short(name)}\" appears twice; which one is meant is ambiguous.");
            }

            Read(ref r);
            switch (name)
            {
                case "added_tokens":
                    ReadAddedTokens(ref r, added, source);
                    break;
                case "normalizer":
                    normalizer = r.TokenType == JsonTokenType.Null ? null : JsonDocument.ParseValue(ref r);
                    break;
                case "pre_tokenizer":
                    preTokenizer = r.TokenType == JsonTokenType.Null ? null : JsonDocument.ParseValue(ref r);
                    break;
                case "post_processor":
                    postProcessor = r.TokenType == JsonTokenType.Null ? null : JsonDocument.ParseValue(ref r);
                    break;
                case "model":
                    sawModel = true;
                    Expect(ref r, JsonTokenType.StartObject, "model", source);
                    while (Read(ref r) == JsonTokenType.PropertyName)
                    {
                        string key = r.GetString()!;
                        if (!modelKeys.Add(key))
                        {
                            throw new TokenizerFormatException(source, $"model.{Short(key)} appears twice; which one is meant is ambiguous.");
                        }

                        Read(ref r);
                        switch (key)
                        {
                            case "type":
                                modelType = StringValue(ref r, "model.type", source, nullable: false);
                                if (modelType != "BPE")
                                {
                                    throw new TokenizerFormatException(source, $"model.type is '{modelType}', but only a BPE vocabulary (Gemma's) is supported.");
                                }

                                break;
                            case "unk_token":
                                unkToken = StringValue(ref r, "model.unk_token", source, nullable: true);
                                break;
                            case "byte_fallback":
                                byteFallback = BoolValue(ref r, "model.byte_fallback", source);
                                break;
                            case "fuse_unk":
                                fuseUnk = BoolValue(ref r, "model.fuse_unk", source);
                                break;
                            case "dropout":
                                if (r.TokenType != JsonTokenType.Null && (r.TokenType != JsonTokenType.Number || r.GetDouble() != 0))
                                {
                                    throw new TokenizerFormatException(source, "model.dropout is set; BPE dropout is random and cannot give exact ids.");
                                }

                                break;
                            case "continuing_subword_prefix":
                            case "end_of_word_suffix":
                                if (StringValue(ref r, $"model.{key}", source, nullable: true) is { Length: > 0 } v)
                                {
                                    throw new TokenizerFormatException(source, $"model.{key} is '{v}'; only SentencePiece-style BPE without word affixes is supported.");
                                }

                                break;
                            case "ignore_merges":
                                if (BoolValue(ref r, "model.ignore_merges", source))
                                {
                                    throw new TokenizerFormatException(source, "model.ignore_merges is true, which this tokenizer does not implement.");
                                }

                                break;
                            case "vocab":
                                vocab = ReadVocab(ref r, source, fileBytes);
                                if (pendingMerges is not null)
                                {
                                    merges = ResolveMerges(pendingMerges, vocab, source);
                                    pendingMerges = null;
                                }

                                break;
                            case "merges":
                                if (vocab is null)
                                {
                                    pendingMerges = ReadMergeStrings(ref r, source);
                                }
                                else
                                {
                                    merges = ReadMerges(ref r, vocab, source, fileBytes);
                                }

                                break;
                            default:
                                r.Skip();
                                break;
                        }
                    }

                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        if (!sawModel)
        {
            throw new TokenizerFormatException(source, "not a tokenizer.json: it has no \"model\" field.");
        }

        if (modelType is null)
        {
            throw new TokenizerFormatException(source, "model.type is missing; expected \"BPE\".");
        }

        if (vocab is null)
        {
            throw new TokenizerFormatException(source, "model.vocab is missing.");
        }

        if (merges is null)
        {
            throw new TokenizerFormatException(source, "model.merges is missing.");
        }

        bool escapeSpaces = ReadNormalizer(normalizer?.RootElement, source);
        CheckPreTokenizer(preTokenizer?.RootElement, escapeSpaces, source);

        if (vocab.Count == 0)
        {
            throw new TokenizerFormatException(source, "model.vocab is empty.");
        }

        // Pieces by id; added tokens may extend the vocabulary. Ids run 0..size-1 without gaps, so size cannot exceed the
        // number of entries: check that before allocating anything of the largest id's size.
        long maxId = -1;
        foreach (int id in vocab.Values)
        {
            maxId = Math.Max(maxId, id);
        }

        foreach (var a in added)
        {
            maxId = Math.Max(maxId, a.Id);
        }

        long entries = (long)vocab.Count + added.Count;
        if (maxId >= entries)
        {
            // Some id below maxId is missing; name the first, with a table no larger than the entries the file holds.
            var seen = new bool[entries];
            foreach (int id in vocab.Values)
            {
                if (id < entries)
                {
                    seen[id] = true;
                }
            }

            foreach (var a in added)
            {
                if (a.Id < entries)
                {
                    seen[a.Id] = true;
                }
            }

            int gap = Array.IndexOf(seen, false);
            throw new TokenizerFormatException(source, $"the vocabulary has no token with id {gap}, yet gives id {maxId} (ids must be 0..N-1 without gaps; the file holds {entries} entries).");
        }

        int size = (int)maxId + 1;

        var pieces = new string[size];
        foreach (var (piece, id) in vocab)
        {
            pieces[id] = piece;
        }

        var isSpecial = new bool[size];
        foreach (var a in added)
        {
            if (a.Lstrip || a.Rstrip || a.SingleWord || a.Normalized)
            {
                string opt = a.Lstrip ? "lstrip" : a.Rstrip ? "rstrip" : a.SingleWord ? "single_word" : "normalized";
                throw new TokenizerFormatException(source, $"added token {TokenizerData.Describe(a.Content!)} (id {a.Id}) sets {opt}, which this tokenizer does not implement.");
            }

            if (pieces[a.Id] is { } existing && existing != a.Content)
            {
                throw new TokenizerFormatException(source, $"added token {TokenizerData.Describe(a.Content!)} has id {a.Id}, which the vocabulary gives to {TokenizerData.Describe(existing)}.");
            }

            if (vocab.TryGetValue(a.Content!, out int other) && other != a.Id)
            {
                throw new TokenizerFormatException(source, $"added token {TokenizerData.Describe(a.Content!)} has id {a.Id}, but the vocabulary gives it id {other}.");
            }

            pieces[a.Id] = a.Content!;
            vocab.TryAdd(a.Content!, a.Id);
            isSpecial[a.Id] = a.Special;
        }

        for (int id = 0; id < size; id++)
        {
            if (pieces[id] is null)
            {
                throw new TokenizerFormatException(source, $"the vocabulary has no token with id {id} (ids must be 0..{size - 1} without gaps).");
            }
        }

        // With byte fallback, a character whose UTF-8 bytes lack a byte token becomes <unk>, and Hugging Face's BPE then
        // emits that <unk> after the byte tokens of the characters that follow it, an order this tokenizer does not
        // reproduce. So every byte a character can need must have its token: an ASCII byte may instead be a piece of its
        // own (Gemma has "\t" but no <0x09>).
        if (byteFallback)
        {
            for (int value = 0; value < 256; value++)
            {
                if (!vocab.ContainsKey($"<0x{value:X2}>") && !(value < 0x80 && vocab.ContainsKey(((char)value).ToString())))
                {
                    throw new TokenizerFormatException(source, $"model.byte_fallback is true, but the vocabulary lacks the byte token <0x{value:X2}>.");
                }
            }
        }

        int unkId = -1;
        if (unkToken is not null && !vocab.TryGetValue(unkToken, out unkId))
        {
            throw new TokenizerFormatException(source, $"model.unk_token {TokenizerData.Describe(unkToken)} is not in the vocabulary.");
        }

        var (prefix, suffix) = ReadPostProcessor(postProcessor?.RootElement, vocab, size, source);
        int bos = vocab.GetValueOrDefault("<bos>", prefix.Length > 0 ? prefix[0] : -1);
        int eos = vocab.GetValueOrDefault("<eos>", suffix.Length > 0 ? suffix[^1] : -1);
        if (addBos is bool b)
        {
            prefix = b ? (bos >= 0 ? [bos] : throw new TokenizerFormatException(source, "AddBeginningOfSentence is set, but the vocabulary has no <bos> token.")) : [];
        }

        if (addEos is bool e)
        {
            suffix = e ? (eos >= 0 ? [eos] : throw new TokenizerFormatException(source, "AddEndOfSentence is set, but the vocabulary has no <eos> token.")) : [];
        }

        return new TokenizerData
        {
            Source = source,
            Algorithm = MergeAlgorithm.RankedMerges,
            Pieces = pieces,
            PieceToId = vocab,
            Added = new AddedTokenMatcher(added.Select(a => (a.Content!, a.Id))),
            IsSpecial = isSpecial,
            Merges = new MergeTable(merges.Value.L, merges.Value.R, merges.Value.Res),
            UnknownId = unkId,
            FuseUnknown = fuseUnk,
            ByteFallback = byteFallback,
            EscapeSpaces = escapeSpaces,
            PrefixIds = prefix,
            SuffixIds = suffix,
            BosId = bos,
            EosId = eos,
            PadId = vocab.GetValueOrDefault("<pad>", -1),
        }.Seal();
    }

    private static bool ReadNormalizer(JsonElement? n, string source)
    {
        if (n is null)
        {
            return false;
        }

        var e = n.Value;
        string type = Str(e, "type");
        if (type == "Sequence" && Prop(e, "normalizers") is { ValueKind: JsonValueKind.Array } list)
        {
            bool escape = false;
            foreach (var item in list.EnumerateArray())
            {
                escape |= ReadNormalizer(item, source);
            }

            return escape;
        }

        if (type == "Replace" && Prop(e, "pattern") is { } pattern && Str(pattern, "String") == " " && Str(e, "content") == "\u2581")
        {
            return true;
        }

        throw new TokenizerFormatException(source, $"normalizer {Short(e.GetRawText())} is not supported; only Gemma's Replace(' ' -> '\u2581') is.");
    }

    private static void CheckPreTokenizer(JsonElement? p, bool escapeSpaces, string source)
    {
        if (p is null)
        {
            return;
        }

        var e = p.Value;
        string type = Str(e, "type");

        // Gemma's Split on " " runs after the normalizer has replaced every space, so it never splits.
        if (type == "Split" && escapeSpaces && Prop(e, "pattern") is { } pattern && Str(pattern, "String") == " ")
        {
            return;
        }

        throw new TokenizerFormatException(source, $"pre_tokenizer {Short(e.GetRawText())} is not supported; Gemma's tokenizer.json has none that splits.");
    }

    private static (int[] Prefix, int[] Suffix) ReadPostProcessor(JsonElement? p, Dictionary<string, int> vocab, int size, string source)
    {
        if (p is null)
        {
            return ([], []);
        }

        var e = p.Value;
        string type = Str(e, "type");
        if (type != "TemplateProcessing" || Prop(e, "single") is not { ValueKind: JsonValueKind.Array } single)
        {
            throw new TokenizerFormatException(source, $"post_processor of type '{Short(type)}' is not supported; expected TemplateProcessing with a \"single\" list.");
        }

        var specials = Prop(e, "special_tokens");
        if (specials is { } sp && sp.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
        {
            throw new TokenizerFormatException(source, $"post_processor.special_tokens should be an object, not {sp.ValueKind}.");
        }

        var prefix = new List<int>();
        var suffix = new List<int>();
        bool seenSequence = false;
        foreach (var item in single.EnumerateArray())
        {
            // Each item is {"Sequence": {"id": "A", "type_id": n}} or {"SpecialToken": {"id": name, "type_id": n}}, with
            // type_id a non-negative integer, as Hugging Face's deserializer requires.
            if (Prop(item, "Sequence") is { } seq)
            {
                if (Str(seq, "id") != "A" || !TypeIdOk(seq))
                {
                    throw new TokenizerFormatException(source, $"post_processor.single item {Short(item.GetRawText())} should be {{\"Sequence\": {{\"id\": \"A\", \"type_id\": n}}}}.");
                }

                seenSequence = true;
                continue;
            }

            if (Prop(item, "SpecialToken") is not { } st || Prop(st, "id") is not { ValueKind: JsonValueKind.String } idName || !TypeIdOk(st))
            {
                throw new TokenizerFormatException(source, $"post_processor.single item {Short(item.GetRawText())} is not understood.");
            }

            string name = idName.GetString()!;
            List<int> ids = [];
            if (specials is { ValueKind: JsonValueKind.Object } && Prop(specials.Value, name) is { } spec)
            {
                if (Prop(spec, "ids") is not { ValueKind: JsonValueKind.Array } idList)
                {
                    throw new TokenizerFormatException(source, $"post_processor.special_tokens['{Short(name)}'] has no \"ids\" list.");
                }

                foreach (var id in idList.EnumerateArray())
                {
                    if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out int value) || value < 0 || value >= size)
                    {
                        throw new TokenizerFormatException(source, $"post_processor.special_tokens['{Short(name)}'] id {Short(id.GetRawText())} is not a token id (0..{size - 1}).");
                    }

                    ids.Add(value);
                }
            }
            else if (vocab.TryGetValue(name, out int id))
            {
                ids.Add(id);
            }
            else
            {
                throw new TokenizerFormatException(source, $"post_processor names special token '{Short(name)}', which is not in the vocabulary.");
            }

            (seenSequence ? suffix : prefix).AddRange(ids);
        }

        return ([.. prefix], [.. suffix]);
    }

    private static bool TypeIdOk(JsonElement piece) =>
        Prop(piece, "type_id") is not { } t || (t.ValueKind == JsonValueKind.Number && t.TryGetUInt32(out _));

    /// <summary>The property of an object, or null when <paramref name="e"/> is not an object or lacks it.</summary>
    private static JsonElement? Prop(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : null;

    /// <summary>A string property, or "" when absent or not a string (then nothing matches it).</summary>
    private static string Str(JsonElement e, string name) =>
        Prop(e, name) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : "";

    /// <summary>At most 160 characters of <paramref name="s"/> for an error message.</summary>
    private static string Short(string s) => s.Length <= 160 ? s : $"{s[..160]}… ({s.Length} characters)";

    private static string? StringValue(ref Utf8JsonReader r, string what, string source, bool nullable)
    {
        if (r.TokenType == JsonTokenType.String)
        {
            return r.GetString();
        }

        if (nullable && r.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        throw new TokenizerFormatException(source, $"{what} should be a string{(nullable ? " or null" : "")}, not {r.TokenType}.");
    }

    private static bool BoolValue(ref Utf8JsonReader r, string what, string source) => r.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        _ => throw new TokenizerFormatException(source, $"{what} should be true or false, not {r.TokenType}."),
    };

    private static void ReadAddedTokens(ref Utf8JsonReader r, List<Added> added, string source)
    {
        Expect(ref r, JsonTokenType.StartArray, "added_tokens", source);
        while (Read(ref r) != JsonTokenType.EndArray)
        {
            string at = $"added_tokens[{added.Count}]";
            Expect(ref r, JsonTokenType.StartObject, at, source);
            var a = new Added();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            while (Read(ref r) == JsonTokenType.PropertyName)
            {
                string key = r.GetString()!;
                if (!keys.Add(key))
                {
                    throw new TokenizerFormatException(source, $"{at}.{Short(key)} appears twice.");
                }

                Read(ref r);
                switch (key)
                {
                    case "id":
                        if (r.TokenType != JsonTokenType.Number || !r.TryGetInt32(out a.Id) || a.Id < 0)
                        {
                            throw new TokenizerFormatException(source, $"{at}.id should be a non-negative integer below 2^31.");
                        }

                        break;
                    case "content": a.Content = StringValue(ref r, at + ".content", source, nullable: false); break;
                    case "special": a.Special = BoolValue(ref r, at + ".special", source); break;
                    case "normalized": a.Normalized = BoolValue(ref r, at + ".normalized", source); break;
                    case "lstrip": a.Lstrip = BoolValue(ref r, at + ".lstrip", source); break;
                    case "rstrip": a.Rstrip = BoolValue(ref r, at + ".rstrip", source); break;
                    case "single_word": a.SingleWord = BoolValue(ref r, at + ".single_word", source); break;
                    default: r.Skip(); break;
                }
            }

            if (a.Id < 0 || string.IsNullOrEmpty(a.Content))
            {
                throw new TokenizerFormatException(source, $"{at} needs a non-negative \"id\" and a non-empty \"content\".");
            }

            added.Add(a);
        }
    }

    private static Dictionary<string, int> ReadVocab(ref Utf8JsonReader r, string source, int fileBytes)
    {
        if (r.TokenType == JsonTokenType.StartArray)
        {
            throw new TokenizerFormatException(source, "model.vocab is a list of [piece, score] pairs (a Unigram vocabulary), not a BPE vocabulary.");
        }

        Expect(ref r, JsonTokenType.StartObject, "model.vocab", source);
        // Sized for Gemma's 256k entries, but never beyond what the file could hold (an entry takes at least 6 bytes: "a":0,).
        var vocab = new Dictionary<string, int>(Math.Min(300_000, fileBytes / 6), StringComparer.Ordinal);
        while (Read(ref r) == JsonTokenType.PropertyName)
        {
            string piece = r.GetString()!;
            Read(ref r);
            if (r.TokenType != JsonTokenType.Number || !r.TryGetInt32(out int id) || id < 0)
            {
                throw new TokenizerFormatException(source, $"model.vocab[{TokenizerData.Describe(piece)}] should be a non-negative integer id.");
            }

            if (!vocab.TryAdd(piece, id))
            {
                throw new TokenizerFormatException(source, $"model.vocab lists {TokenizerData.Describe(piece)} twice.");
            }
        }

        return vocab;
    }

    private static List<(string, string)> ReadMergeStrings(ref Utf8JsonReader r, string source)
    {
        var list = new List<(string, string)>();
        char[] buffer = new char[256];
        Expect(ref r, JsonTokenType.StartArray, "model.merges", source);
        while (Read(ref r) != JsonTokenType.EndArray)
        {
            var (a, b) = ReadMerge(ref r, ref buffer, list.Count, source);
            list.Add((buffer.AsSpan(a).ToString(), buffer.AsSpan(b).ToString()));
        }

        return list;
    }

    private static (int[], int[], int[]) ResolveMerges(List<(string, string)> strings, Dictionary<string, int> vocab, string source)
    {
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        int n = strings.Count;
        int[] left = new int[n], right = new int[n], result = new int[n];
        for (int i = 0; i < n; i++)
        {
            (left[i], right[i], result[i]) = Resolve(lookup, strings[i].Item1, strings[i].Item2, i, source);
        }

        return (left, right, result);
    }

    private static (int[], int[], int[]) ReadMerges(ref Utf8JsonReader r, Dictionary<string, int> vocab, string source, int fileBytes)
    {
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();

        // Gemma has ~580k merges; a merge takes at least 6 bytes ("a b",).
        int capacity = Math.Min(600_000, fileBytes / 6);
        var left = new List<int>(capacity);
        var right = new List<int>(capacity);
        var result = new List<int>(capacity);
        char[] buffer = new char[256];
        Expect(ref r, JsonTokenType.StartArray, "model.merges", source);
        while (Read(ref r) != JsonTokenType.EndArray)
        {
            var (a, b) = ReadMerge(ref r, ref buffer, left.Count, source);
            var (l, rr, res) = Resolve(lookup, buffer.AsSpan(a), buffer.AsSpan(b), left.Count, source);
            left.Add(l);
            right.Add(rr);
            result.Add(res);
        }

        return ([.. left], [.. right], [.. result]);
    }

    private static (int, int, int) Resolve(Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> lookup, ReadOnlySpan<char> a, ReadOnlySpan<char> b, int index, string source)
    {
        if (!lookup.TryGetValue(a, out int l))
        {
            throw new TokenizerFormatException(source, $"model.merges[{index}]: {TokenizerData.Describe(a.ToString())} is not in the vocabulary.");
        }

        if (!lookup.TryGetValue(b, out int rr))
        {
            throw new TokenizerFormatException(source, $"model.merges[{index}]: {TokenizerData.Describe(b.ToString())} is not in the vocabulary.");
        }

        string joined = string.Concat(a, b);
        if (!lookup.TryGetValue(joined, out int res))
        {
            throw new TokenizerFormatException(source, $"model.merges[{index}]: the merged token {TokenizerData.Describe(joined)} is not in the vocabulary.");
        }

        return (l, rr, res);
    }

    /// <summary>One merge, either "a b" (older format) or ["a", "b"]; spans point into <paramref name="buffer"/>.</summary>
    private static (Range A, Range B) ReadMerge(ref Utf8JsonReader r, ref char[] buffer, int index, string source)
    {
        if (r.TokenType == JsonTokenType.String)
        {
            int len = CopyString(ref r, ref buffer, 0);
            var s = buffer.AsSpan(0, len);
            int space = s.IndexOf(' ');
            if (space < 0 || s[(space + 1)..].Contains(' '))
            {
                throw new TokenizerFormatException(source, $"model.merges[{index}] = {TokenizerData.Describe(s.ToString())} should be two tokens separated by one space.");
            }

            return (new Range(0, space), new Range(space + 1, len));
        }

        if (r.TokenType == JsonTokenType.StartArray)
        {
            Read(ref r);
            Expect(ref r, JsonTokenType.String, $"model.merges[{index}][0]", source);
            int la = CopyString(ref r, ref buffer, 0);
            Read(ref r);
            Expect(ref r, JsonTokenType.String, $"model.merges[{index}][1]", source);
            int lb = CopyString(ref r, ref buffer, la);
            if (Read(ref r) != JsonTokenType.EndArray)
            {
                throw new TokenizerFormatException(source, $"model.merges[{index}] should hold exactly two tokens.");
            }

            return (new Range(0, la), new Range(la, la + lb));
        }

        throw new TokenizerFormatException(source, $"model.merges[{index}] should be a string \"a b\" or a pair [\"a\", \"b\"], not {r.TokenType}.");
    }

    private static int CopyString(ref Utf8JsonReader r, ref char[] buffer, int at)
    {
        int max = r.HasValueSequence ? (int)r.ValueSequence.Length : r.ValueSpan.Length;
        if (buffer.Length < at + max)
        {
            Array.Resize(ref buffer, (at + max) * 2);
        }

        return r.CopyString(buffer.AsSpan(at));
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType type, string what, string source)
    {
        if (r.TokenType != type)
        {
            throw new TokenizerFormatException(source, $"{what} should be {type}, not {r.TokenType}.");
        }
    }

    private static JsonTokenType Read(ref Utf8JsonReader r)
    {
        if (!r.Read())
        {
            throw new JsonException("unexpected end of data (the file is truncated)");
        }

        return r.TokenType;
    }
}
