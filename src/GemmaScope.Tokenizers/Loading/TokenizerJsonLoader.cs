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

        var reader = new Utf8JsonReader(span, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, MaxDepth = 256 });
        try
        {
            return Parse(ref reader, source, addBos, addEos);
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(source, $"malformed or truncated JSON near byte {reader.BytesConsumed}: {e.Message}", e);
        }
    }

    private static TokenizerData Parse(ref Utf8JsonReader r, string source, bool? addBos, bool? addEos)
    {
        Read(ref r);
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
                        Read(ref r);
                        switch (key)
                        {
                            case "type":
                                modelType = r.GetString();
                                if (modelType != "BPE")
                                {
                                    throw new TokenizerFormatException(source, $"model.type is '{modelType}', but only a BPE vocabulary (Gemma's) is supported.");
                                }

                                break;
                            case "unk_token":
                                unkToken = r.TokenType == JsonTokenType.Null ? null : r.GetString();
                                break;
                            case "byte_fallback":
                                byteFallback = r.GetBoolean();
                                break;
                            case "fuse_unk":
                                fuseUnk = r.GetBoolean();
                                break;
                            case "dropout":
                                if (r.TokenType != JsonTokenType.Null && r.GetDouble() != 0)
                                {
                                    throw new TokenizerFormatException(source, "model.dropout is set; BPE dropout is random and cannot give exact ids.");
                                }

                                break;
                            case "continuing_subword_prefix":
                            case "end_of_word_suffix":
                                if (r.TokenType != JsonTokenType.Null && r.GetString() is { Length: > 0 } v)
                                {
                                    throw new TokenizerFormatException(source, $"model.{key} is '{v}'; only SentencePiece-style BPE without word affixes is supported.");
                                }

                                break;
                            case "ignore_merges":
                                if (r.GetBoolean())
                                {
                                    throw new TokenizerFormatException(source, "model.ignore_merges is true, which this tokenizer does not implement.");
                                }

                                break;
                            case "vocab":
                                vocab = ReadVocab(ref r, source);
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
                                    merges = ReadMerges(ref r, vocab, source);
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

        // Pieces by id; added tokens may extend the vocabulary.
        int size = 0;
        foreach (int id in vocab.Values)
        {
            size = Math.Max(size, id + 1);
        }

        foreach (var a in added)
        {
            size = Math.Max(size, a.Id + 1);
        }

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

        int unkId = -1;
        if (unkToken is not null && !vocab.TryGetValue(unkToken, out unkId))
        {
            throw new TokenizerFormatException(source, $"model.unk_token {TokenizerData.Describe(unkToken)} is not in the vocabulary.");
        }

        var (prefix, suffix) = ReadPostProcessor(postProcessor?.RootElement, vocab, source);
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
        string type = e.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type == "Sequence" && e.TryGetProperty("normalizers", out var list))
        {
            bool escape = false;
            foreach (var item in list.EnumerateArray())
            {
                escape |= ReadNormalizer(item, source);
            }

            return escape;
        }

        if (type == "Replace"
            && e.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("String", out var from) && from.GetString() == " "
            && e.TryGetProperty("content", out var to) && to.GetString() == "\u2581")
        {
            return true;
        }

        throw new TokenizerFormatException(source, $"normalizer {e.GetRawText()} is not supported; only Gemma's Replace(' ' -> '\u2581') is.");
    }

    private static void CheckPreTokenizer(JsonElement? p, bool escapeSpaces, string source)
    {
        if (p is null)
        {
            return;
        }

        var e = p.Value;
        string type = e.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";

        // Gemma's Split on " " runs after the normalizer has replaced every space, so it never splits.
        if (type == "Split" && escapeSpaces && e.TryGetProperty("pattern", out var pattern)
            && pattern.TryGetProperty("String", out var s) && s.GetString() == " ")
        {
            return;
        }

        throw new TokenizerFormatException(source, $"pre_tokenizer {e.GetRawText()} is not supported; Gemma's tokenizer.json has none that splits.");
    }

    private static (int[] Prefix, int[] Suffix) ReadPostProcessor(JsonElement? p, Dictionary<string, int> vocab, string source)
    {
        if (p is null)
        {
            return ([], []);
        }

        var e = p.Value;
        string type = e.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type != "TemplateProcessing" || !e.TryGetProperty("single", out var single))
        {
            throw new TokenizerFormatException(source, $"post_processor of type '{type}' is not supported; expected TemplateProcessing.");
        }

        var prefix = new List<int>();
        var suffix = new List<int>();
        bool seenSequence = false;
        foreach (var item in single.EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out _))
            {
                seenSequence = true;
                continue;
            }

            if (!item.TryGetProperty("SpecialToken", out var st) || st.GetProperty("id").GetString() is not { } name)
            {
                throw new TokenizerFormatException(source, $"post_processor.single item {item.GetRawText()} is not understood.");
            }

            List<int> ids = [];
            if (e.TryGetProperty("special_tokens", out var specials) && specials.TryGetProperty(name, out var spec) && spec.TryGetProperty("ids", out var idList))
            {
                foreach (var id in idList.EnumerateArray())
                {
                    ids.Add(id.GetInt32());
                }
            }
            else if (vocab.TryGetValue(name, out int id))
            {
                ids.Add(id);
            }
            else
            {
                throw new TokenizerFormatException(source, $"post_processor names special token '{name}', which is not in the vocabulary.");
            }

            (seenSequence ? suffix : prefix).AddRange(ids);
        }

        return ([.. prefix], [.. suffix]);
    }

    private static void ReadAddedTokens(ref Utf8JsonReader r, List<Added> added, string source)
    {
        Expect(ref r, JsonTokenType.StartArray, "added_tokens", source);
        while (Read(ref r) == JsonTokenType.StartObject)
        {
            var a = new Added();
            while (Read(ref r) == JsonTokenType.PropertyName)
            {
                string key = r.GetString()!;
                Read(ref r);
                switch (key)
                {
                    case "id": a.Id = r.GetInt32(); break;
                    case "content": a.Content = r.GetString(); break;
                    case "special": a.Special = r.GetBoolean(); break;
                    case "normalized": a.Normalized = r.GetBoolean(); break;
                    case "lstrip": a.Lstrip = r.GetBoolean(); break;
                    case "rstrip": a.Rstrip = r.GetBoolean(); break;
                    case "single_word": a.SingleWord = r.GetBoolean(); break;
                    default: r.Skip(); break;
                }
            }

            if (a.Id < 0 || string.IsNullOrEmpty(a.Content))
            {
                throw new TokenizerFormatException(source, $"added_tokens[{added.Count}] needs a non-negative \"id\" and a non-empty \"content\".");
            }

            added.Add(a);
        }
    }

    private static Dictionary<string, int> ReadVocab(ref Utf8JsonReader r, string source)
    {
        if (r.TokenType == JsonTokenType.StartArray)
        {
            throw new TokenizerFormatException(source, "model.vocab is a list of [piece, score] pairs (a Unigram vocabulary), not a BPE vocabulary.");
        }

        Expect(ref r, JsonTokenType.StartObject, "model.vocab", source);
        var vocab = new Dictionary<string, int>(300_000, StringComparer.Ordinal);
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

    private static (int[], int[], int[]) ReadMerges(ref Utf8JsonReader r, Dictionary<string, int> vocab, string source)
    {
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        var left = new List<int>(600_000);
        var right = new List<int>(600_000);
        var result = new List<int>(600_000);
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
