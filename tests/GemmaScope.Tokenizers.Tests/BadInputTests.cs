using System.Text;

namespace GemmaScope.Tokenizers.Tests;

public class BadInputTests
{
    private static string TempFile(string name, byte[] content) => TestFixtures.WriteScratch(Path.Combine("bad", name), content);

    private static TokenizerFormatException JsonFails(string name, string json, string expected)
    {
        string path = TempFile(name, Encoding.UTF8.GetBytes(json));
        var e = Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromTokenizerJson(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Equal(path, e.FilePath);
        return e;
    }

    [Fact]
    public void Missing_file_names_the_path()
    {
        string path = Path.Combine(Path.GetTempPath(), "no-such-dir-gemmascope", "tokenizer.json");
        var e = Assert.Throws<FileNotFoundException>(() => GemmaTokenizer.FromTokenizerJson(path));
        Assert.Equal(path, e.FileName);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => GemmaTokenizer.FromSentencePieceModel(path));
        Assert.Throws<FileNotFoundException>(() => GemmaTokenizer.Load(path));
        string emptyDir = Directory.CreateDirectory(Path.Combine(TestFixtures.Scratch, "empty")).FullName;
        Assert.Contains("neither tokenizer.json nor tokenizer.model", Assert.Throws<FileNotFoundException>(() => GemmaTokenizer.Load(emptyDir)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Files_that_are_not_tokenizers_are_rejected()
    {
        JsonFails("empty.json", "", "empty");
        JsonFails("list.json", "[1, 2, 3]", "expected a JSON object");
        JsonFails("config.json", "{\"hidden_size\": 2304, \"model_type\": \"gemma2\"}", "no \"model\" field");
        string png = TempFile("image.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]);
        Assert.Contains(png, Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromTokenizerJson(png)).Message, StringComparison.Ordinal);
        var e = Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromSentencePieceModel(png));
        Assert.Contains(png, e.Message, StringComparison.Ordinal);
        Assert.Contains("protobuf", e.Message, StringComparison.Ordinal);
        Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.Load(png));
    }

    /// <summary>The first half of <paramref name="full"/> must be refused as truncated, naming the file.</summary>
    private static void TruncatedIsReported(string name, byte[] full, Func<string, GemmaTokenizer> load)
    {
        string path = TempFile(name, full[..(full.Length / 2)]);
        var e = Assert.Throws<TokenizerFormatException>(() => load(path));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_or_malformed_json_is_reported_with_the_position()
    {
        TruncatedIsReported("truncated.json", TestFixtures.JsonBytes, p => GemmaTokenizer.FromTokenizerJson(p));
        JsonFails("malformed.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,, }}}", "malformed");
        JsonFails("badid.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}}", "non-negative integer id");
        JsonFails("badmerge.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "merged token 'ab' is not in the vocabulary");
        JsonFails("nomerges.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "model.merges is missing");
        JsonFails("gap.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}", "no token with id 1");
    }

    [Fact]
    public void Vocabularies_that_are_not_bpe_are_rejected()
    {
        JsonFails("unigram.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]]}}", "only a BPE vocabulary");
        JsonFails("wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "model.type is 'WordPiece'");
        JsonFails("unigram-untyped.json", "{\"model\": {\"vocab\": [[\"a\", -1.0]]}}", "Unigram");
        JsonFails("lstrip.json", "{\"added_tokens\": [{\"id\": 0, \"content\": \"<x>\", \"lstrip\": true}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"<x>\": 0}, \"merges\": []}}", "lstrip");
        JsonFails("bert.json", "{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "BertNormalizer");

        // A SentencePiece Unigram model: ModelProto { pieces { piece: "a" score: 0 } trainer_spec { model_type: UNIGRAM } }.
        byte[] unigram = [0x0A, 0x03, 0x0A, 0x01, (byte)'a', 0x12, 0x02, 0x18, 0x01];
        string path = TempFile("unigram.model", unigram);
        var e = Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromSentencePieceModel(path));
        Assert.Contains("model_type is UNIGRAM", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_protobuf_is_reported()
    {
        TruncatedIsReported("truncated.model", TestFixtures.ModelBytes, p => GemmaTokenizer.FromSentencePieceModel(p));

        var s = Assert.Throws<TokenizerFormatException>(() => GemmaTokenizer.FromSentencePieceModel(new MemoryStream(TestFixtures.ModelBytes[..7]), sourceName: "cut.model"));
        Assert.StartsWith("cut.model: ", s.Message, StringComparison.Ordinal);
    }
}
