using System.Text;
using static GemmaScope.Tokenizers.Tests.TokenizerCorpus;

namespace GemmaScope.Tokenizers.Tests;

/// <summary>Issue 13's tokenizer.json cases, each the small Gemma-shaped file of <see cref="TokenizerCorpus"/> with one defect.</summary>
public class TokenizerCorpusTests
{
    private static TokenizerFormatException Refused(string name, string json, string? contains = null) => Refused(name, Encoding.UTF8.GetBytes(json), contains);

    private static TokenizerFormatException Refused(string name, byte[] bytes, string? contains = null)
    {
        string path = Write(name, bytes);
        var e = Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromTokenizerJson(path));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 1000, $"message of {e.Message.Length} characters");
        if (contains is not null)
        {
            Assert.Contains(contains, e.Message, StringComparison.Ordinal);
        }

        return e;
    }

    [Fact]
    public void CorpusBaseFileLoads_AndAgreesWithHandWorkedIds()
    {
        var tok = GemmaTokenizer.FromTokenizerJson(Write("base.json", Json()));
        int Id(string piece) => tok.TokenToId(piece)!.Value;

        // "ab" merges to one piece, "ba" to another; <bos> comes first.
        // " ab" -> "▁ab" -> ("a","b") ranks first, so "▁" "ab", and ("▁a","b") never applies.
        Assert.Equal([2, Id("\u2581"), Id("ab")], tok.EncodeToIdArray(" ab"));
        Assert.Equal([2, Id("ab")], tok.EncodeToIdArray("ab"));
        Assert.Equal([2, Id("ba")], tok.EncodeToIdArray("ba"));
        Assert.Equal([2, Id("hello")], tok.EncodeToIdArray("hello"));
    }

    [Fact]
    public void WrongJsonTypes()
    {
        Refused("type-num.json", Json(modelType: "5"), "model.type");
        Refused("type-null.json", Json(modelType: "null"), "model.type");
        Refused("bf-str.json", Json(byteFallback: "\"yes\""), "byte_fallback");
        Refused("bf-num.json", Json(byteFallback: "1"), "byte_fallback");
        Refused("norm-num.json", Json(normalizer: "5"), "normalizer");
        Refused("norm-type.json", Json(normalizer: "{\"type\":5}"), "normalizer");
        Refused("norm-pattern.json", Json(normalizer: "{\"type\":\"Replace\",\"pattern\":\" \",\"content\":\"\u2581\"}"), "normalizer");
        Refused("norm-seq.json", Json(normalizer: "{\"type\":\"Sequence\",\"normalizers\":[5]}"), "normalizer");
        Refused("pre-list.json", Json(preTokenizer: "[]"), "pre_tokenizer");
        Refused("pre-pattern.json", Json(preTokenizer: "{\"type\":\"Split\",\"pattern\":[\" \"]}"), "pre_tokenizer");
        Refused("post-str.json", Json(postProcessor: "\"x\""), "post_processor");
        Refused("post-single.json", Json(postProcessor: "{\"type\":\"TemplateProcessing\",\"single\":5}"), "post_processor");
        Refused("post-idnum.json", Json(postProcessor: "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":2}}]}"), "post_processor");
        Refused("post-ids.json", Json(postProcessor: PostProcessor.Replace("\"ids\":[2]", "\"ids\":[\"2\"]", StringComparison.Ordinal)), "post_processor");
        Refused("post-special.json", Json(postProcessor: PostProcessor.Replace("\"special_tokens\":{", "\"special_tokens\":[{", StringComparison.Ordinal).Replace("]}}}", "]}}]}", StringComparison.Ordinal)), "special_tokens");
        Refused("added-id-str.json", Json(added: "[{\"id\":\"0\",\"content\":\"<pad>\"}]"), "added_tokens[0].id");
        Refused("added-content.json", Json(added: "[{\"id\":0,\"content\":5}]"), "added_tokens[0].content");
        Refused("added-special.json", Json(added: "[{\"id\":0,\"content\":\"<pad>\",\"special\":\"true\"}]"), "added_tokens[0].special");
        Refused("added-obj.json", Json(added: "{}"), "added_tokens");
        Refused("unk-num.json", Json(unk: "3"), "unk_token");
        Refused("merges-num.json", Json(merges: "[5]"), "merges");
        Refused("dropout-str.json", Json(modelExtra: ",\"fuse_unk2\":1,\"dropout2\":\"x\"").Replace("\"dropout\":null", "\"dropout\":\"0.1\"", StringComparison.Ordinal), "dropout");
    }

    [Fact]
    public void NonObjectAddedTokens()
    {
        Refused("added-num.json", Json(added: "[5]"), "added_tokens[0]");
        Refused("added-list.json", Json(added: "[[0, \"<pad>\"]]"), "added_tokens[0]");
        Refused("added-null.json", Json(added: Added(VocabEntries().Count - 1).Replace("[{", "[null,{", StringComparison.Ordinal)), "added_tokens[0]");
    }

    [Fact]
    public void IdsThatOverflowOrAreOutOfRange()
    {
        var v = VocabEntries();
        v[^1] = (v[^1].Piece, int.MaxValue);
        Refused("maxid.json", Json(vocab: VocabJson(v), added: Added(int.MaxValue)), "id");
        Refused("maxadded.json", Json(added: "[{\"id\":2147483647,\"content\":\"<x>\"}]"), "id");
        Refused("bigid.json", Json(added: "[{\"id\":2147483648,\"content\":\"<x>\"}]"), "added_tokens[0].id");
        Refused("negid.json", Json(vocab: "{\"a\":-1}"), "non-negative");
    }

    [Fact]
    public void HugeVocabularyIdFailsBeforeAllocating()
    {
        var v = VocabEntries(byteTokens: false);
        v[^1] = (v[^1].Piece, 300_000_000);
        string json = Json(vocab: VocabJson(v), added: "[]");
        Assert.InRange(json.Length, 1000, 6000);
        string path = Write("hugeid.json", json);
        Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromTokenizerJson(path));
        long before = GC.GetAllocatedBytesForCurrentThread();
        Refused("hugeid.json", json, "no token with id");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 4 << 20, $"allocated {allocated} bytes for a {json.Length}-byte file");
    }

    [Fact]
    public void PostProcessorIdsOutOfRange()
    {
        Refused("post-999.json", Json(postProcessor: PostProcessor.Replace("\"ids\":[2]", "\"ids\":[99999]", StringComparison.Ordinal)), "99999");
        Refused("post-neg.json", Json(postProcessor: PostProcessor.Replace("\"ids\":[2]", "\"ids\":[-1]", StringComparison.Ordinal)), "-1");
    }

    [Fact]
    public void EmptyVocabulary()
    {
        Refused("empty-vocab.json", Json(vocab: "{}", merges: "[]", added: "[]", unk: "null", postProcessor: "null"), "empty");
    }

    [Fact]
    public void UnknownCharacterWithoutFallbackNamesTheCharacter()
    {
        // No byte fallback, no unknown token: encoding a character outside the vocabulary is an error that names it.
        var tok = GemmaTokenizer.FromTokenizerJson(Write("nofallback.json", Json(byteFallback: "false", unk: "null")));
        var e = Assert.Throws<InvalidOperationException>(() => tok.EncodeToIdArray("abz"));
        Assert.Contains("U+007A", e.Message, StringComparison.Ordinal);
        var e2 = Assert.Throws<InvalidOperationException>(() => tok.EncodeToIdArray("a\U0001F600"));
        Assert.Contains("U+1F600", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SecondJsonValueAfterTheRoot()
    {
        Refused("two.json", Json(tail: " {}"));
        Refused("two-num.json", Json(tail: "\n5"));
        Refused("garbage.json", Json(tail: "x"));

        // Trailing whitespace is fine.
        _ = GemmaTokenizer.FromTokenizerJson(Write("ws.json", Json(tail: " \n\t\r\n")));
    }

    [Fact]
    public void VocabGivenTwice()
    {
        // The second copy swaps the ids of "ab" and "ba": merges resolved against one and pieces against the other
        // would encode "ba" as the ids of "ab".
        var v = VocabEntries();
        var swapped = v.Select(e => e.Piece == "ab" ? ("ab", v.First(x => x.Piece == "ba").Id) : e.Piece == "ba" ? ("ba", v.First(x => x.Piece == "ab").Id) : e).ToList();
        Refused("vocab2.json", Json(modelExtra: ",\"vocab\":" + VocabJson(swapped)), "twice");
        Refused("merges2.json", Json(modelExtra: ",\"merges\":[]"), "twice");
        Refused("model2.json", Json(tail: "").Insert(1, "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"), "twice");
        Refused("added2.json", Json().Insert(1, "\"added_tokens\":[],"), "twice");
    }

    [Fact]
    public void AddedTokenContentWithAnotherIdInTheVocabulary()
    {
        Refused("added-other.json", Json(added: "[{\"id\":0,\"content\":\"<bos>\"}]"), "id");
    }

    [Fact]
    public void InvalidUtf8AndLoneSurrogates()
    {
        var bytes = Encoding.UTF8.GetBytes(Json());
        int at = Encoding.UTF8.GetBytes(Json()).AsSpan().IndexOf("hello"u8);
        bytes[at] = 0xFF;
        Refused("utf8.json", bytes, "UTF-8");
        Refused("surrogate.json", Json(vocab: VocabJson(VocabEntries()).Replace("\"hello\"", "\"\\ud800\"", StringComparison.Ordinal)));
    }

    [Fact]
    public void ByteFallbackMissingAByteToken()
    {
        // Without <0x7A>, 'z' becomes <unk>, which Hugging Face's BPE emits after the byte tokens that follow it
        // ("zq!" -> q, !, <unk>): an order this tokenizer would not reproduce, so the file is refused (found by the fuzzer).
        var v = VocabEntries().Select(e => e.Piece == "<0x7A>" ? ("<0xnull7A>", e.Id) : e);
        Refused("nobyte.json", Json(vocab: VocabJson(v)), "<0x7A>");
    }

    [Fact]
    public void PostProcessorTypeIdsThatHuggingFaceRefuses()
    {
        // Found by the fuzzer: Hugging Face's deserializer wants an unsigned integer type_id and a Sequence id "A".
        Refused("typeid.json", Json(postProcessor: PostProcessor.Replace("\"type_id\":0}},{\"Sequence\"", "\"type_id\":2.0}},{\"Sequence\"", StringComparison.Ordinal)), "post_processor");
        Refused("seqid.json", Json(postProcessor: PostProcessor.Replace("{\"Sequence\":{\"id\":\"A\"", "{\"Sequence\":{\"id\":\"C\"", StringComparison.Ordinal)), "post_processor");
    }
}
