using Microsoft.ML.Tokenizers;

namespace GemmaScope.Tokenizers.Tests;

/// <summary>Ids against golden-ids.jsonl, which HF's Rust tokenizers and transformers.js agree on.</summary>
public class GoldenIdsTests
{
    [Fact]
    public void Golden_set_is_the_expected_fixture()
    {
        Assert.Equal(116, TestFixtures.Golden.Count);
        Assert.All(TestFixtures.Golden, g => Assert.Equal(2, g.Ids[0]));
    }

    [Theory]
    [MemberData(nameof(TestFixtures.GoldenIndices), MemberType = typeof(TestFixtures))]
    public void TokenizerJson_gives_golden_ids(int index)
    {
        var (text, ids) = TestFixtures.Golden[index];
        Assert.Equal(ids, TestFixtures.Json.EncodeToIdArray(text));
    }

    [Fact]
    public void Inherited_EncodeToIds_gives_golden_ids_with_bos_first()
    {
        Tokenizer tokenizer = TestFixtures.Json;
        foreach (var (text, ids) in TestFixtures.Golden)
        {
            Assert.Equal(ids, tokenizer.EncodeToIds(text));
            Assert.Equal(ids.Length, tokenizer.CountTokens(text));
        }
    }

    [Fact]
    public void Inherited_EncodeToTokens_gives_golden_ids_and_pieces()
    {
        Tokenizer tokenizer = TestFixtures.Json;
        var (text, ids) = TestFixtures.Golden[1];
        var tokens = tokenizer.EncodeToTokens(text, out _);
        Assert.Equal(ids, tokens.Select(t => t.Id));
        Assert.Equal("<bos>", tokens[0].Value);
        Assert.Equal("▁Tower", tokens[3].Value);
        Assert.Equal(new Range(10, 16), tokens[3].Offset);
    }

    [Fact]
    public void Without_normalization_spaces_are_not_escaped()
    {
        Tokenizer tokenizer = TestFixtures.Json;
        var t = TestFixtures.Json;

        // U+0020 is not a Gemma piece: unnormalized, it falls back to the byte token <0x20>.
        int[] expected = [2, t.TokenToId("a")!.Value, t.TokenToId("<0x20>")!.Value, t.TokenToId("b")!.Value];
        Assert.Equal(expected, tokenizer.EncodeToIds("a b", considerPreTokenization: true, considerNormalization: false));
        Assert.Equal([2, t.TokenToId("a")!.Value, t.TokenToId("\u2581b")!.Value], tokenizer.EncodeToIds("a b"));
    }

    [Fact]
    public void Add_special_tokens_false_drops_bos()
    {
        var (text, ids) = TestFixtures.Golden[1];
        Assert.Equal(ids[1..], TestFixtures.Json.EncodeToIdArray(text, addSpecialTokens: false));
        Assert.Equal([2], TestFixtures.Json.EncodeToIdArray(""));
    }

    [Fact]
    public void Options_can_turn_bos_off_and_eos_on()
    {
        var t = GemmaTokenizer.FromTokenizerJson(new MemoryStream(TestFixtures.JsonBytes), new GemmaTokenizerOptions { AddBeginningOfSentence = false, AddEndOfSentence = true });
        var (text, ids) = TestFixtures.Golden[1];
        Assert.Equal([.. ids[1..], 1], t.EncodeToIdArray(text));
    }

    [Theory]
    [MemberData(nameof(TestFixtures.GoldenIndices), MemberType = typeof(TestFixtures))]
    public void SentencePieceModel_gives_golden_ids_except_control_tokens_written_as_text(int index)
    {
        var (text, ids) = TestFixtures.Golden[index];
        int[] actual = TestFixtures.Model.EncodeToIdArray(text);
        bool writesControlToken = text.Contains("<bos>", StringComparison.Ordinal) || text.Contains("<eos>", StringComparison.Ordinal) || text.Contains("<pad>", StringComparison.Ordinal);
        if (!writesControlToken)
        {
            Assert.Equal(ids, actual);
            return;
        }

        // SentencePiece never parses control tokens from text: "<bos>" is spelled with ordinary pieces,
        // exactly as SentencePiece C++ does (ids recorded by make_sp_control_literals.py).
        var reference = TestFixtures.SentencePieceControlLiterals.Single(r => r.Text == text);
        Assert.Equal(reference.Ids, actual);
        Assert.NotEqual(ids, actual);
    }

    [Fact]
    public void SentencePieceModel_spells_control_tokens_as_SentencePiece_does()
    {
        foreach (var (text, ids) in TestFixtures.SentencePieceControlLiterals)
        {
            Assert.Equal(ids, TestFixtures.Model.EncodeToIdArray(text));
            Assert.Equal(text, TestFixtures.Model.Decode(TestFixtures.Model.EncodeToIdArray(text)));
        }
    }

    [Fact]
    public void Load_of_a_folder_applies_tokenizer_config_flags()
    {
        string dir = Path.GetDirectoryName(TestFixtures.WriteScratch(Path.Combine("config", "tokenizer.json"), TestFixtures.JsonBytes))!;
        var (text, ids) = TestFixtures.Golden[1];
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"add_bos_token\": false, \"add_eos_token\": true}");
        Assert.Equal([.. ids[1..], 1], GemmaTokenizer.Load(dir).EncodeToIdArray(text));
        Assert.Equal(ids, GemmaTokenizer.Load(dir, new GemmaTokenizerOptions { AddBeginningOfSentence = true, AddEndOfSentence = false }).EncodeToIdArray(text));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"add_bos_token\": true, \"add_eos_token\": false}");
        Assert.Equal(ids, GemmaTokenizer.Load(dir).EncodeToIdArray(text));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"add_bos_token\": tru");
        var e = Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.Load(dir));
        Assert.Contains("tokenizer_config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_picks_the_format_from_the_file()
    {
        var fromPath = GemmaTokenizer.Load(TestFixtures.JsonPath);
        Assert.False(fromPath.IsSentencePieceModel);
        Assert.Equal(TestFixtures.Golden[1].Ids, fromPath.EncodeToIdArray(TestFixtures.Golden[1].Text));

        string model = TestFixtures.WriteScratch(Path.Combine("model", "tokenizer.model"), TestFixtures.ModelBytes);
        string dir = Path.GetDirectoryName(model)!;
        Assert.True(GemmaTokenizer.Load(model).IsSentencePieceModel);
        var fromFolder = GemmaTokenizer.Load(dir);
        Assert.True(fromFolder.IsSentencePieceModel);
        Assert.Equal(TestFixtures.Golden[1].Ids, fromFolder.EncodeToIdArray(TestFixtures.Golden[1].Text));
        Assert.Equal(256_000, fromFolder.VocabularySize);
        Assert.Equal((0, 1, 2, 3), (fromFolder.PaddingId, fromFolder.EndOfSentenceId, fromFolder.BeginningOfSentenceId, fromFolder.UnknownId));
    }
}
