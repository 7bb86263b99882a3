using System.Text.Json;

namespace GemmaScope.Tokenizers.Tests;

/// <summary>
/// Gemma 3's tokenizer.json (Gemma Scope 2's models) through <see cref="GemmaTokenizer"/>: ids against transformers.js's golden set
/// and against Hugging Face's Rust tokenizer on the same texts and on random strings.
/// </summary>
public sealed class Gemma3Tests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gemma3");
    private static readonly Lazy<byte[]> Bytes = new(() => TestFixtures.Gunzip(Path.Combine("gemma3", "tokenizer.json.gz")));

    private static readonly Lazy<GemmaTokenizer> Ours = new(() => GemmaTokenizer.FromTokenizerJson(new MemoryStream(Bytes.Value), sourceName: "gemma3/tokenizer.json"));

    private static readonly Lazy<string> JsonPath = new(() => TestFixtures.WriteScratch(Path.Combine("gemma3", "tokenizer.json"), Bytes.Value));

    private static readonly Lazy<global::Tokenizers.DotNet.Tokenizer> Rust = new(() => new global::Tokenizers.DotNet.Tokenizer(JsonPath.Value));

    private static readonly List<(string Text, int[] Ids)> Golden = File.ReadLines(Path.Combine(Dir, "golden-ids.jsonl"))
        .Where(l => l.Length > 0)
        .Select(l =>
        {
            using var doc = JsonDocument.Parse(l);
            return (doc.RootElement.GetProperty("text").GetString()!, doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        })
        .ToList();

    [Fact]
    public void Loads_with_Gemma_3_vocabulary_and_special_ids()
    {
        var t = Ours.Value;

        // 262,144 pieces plus the added token <image_soft_token> at id 262,144 (Hugging Face's len(tokenizer) is 262,145 too).
        Assert.Equal(262145, t.VocabularySize);
        Assert.Equal(262144, t.TokenToId("<image_soft_token>"));
        Assert.Equal(2, t.BeginningOfSentenceId);
        Assert.Equal(105, t.TokenToId("<start_of_turn>"));
        Assert.Equal(106, t.TokenToId("<end_of_turn>"));
    }

    [Fact]
    public void Golden_texts_give_transformers_js_ids()
    {
        Assert.Equal(116, Golden.Count);
        var failures = Golden.Where(g => !g.Ids.AsSpan().SequenceEqual(Ours.Value.EncodeToIdArray(g.Text))).Select(g => JsonSerializer.Serialize(g.Text)).ToList();

        Assert.True(failures.Count == 0, $"{failures.Count} of {Golden.Count} differ: {string.Join(", ", failures.Take(5))}");
    }

    [RustOracleFact]
    public void Golden_texts_match_huggingface_rust_tokenizer()
    {
        foreach (var (text, ids) in Golden)
        {
            Assert.Equal(ids, Array.ConvertAll(Rust.Value.Encode(text), x => (int)x));
        }
    }

    [RustOracleFact]
    public void Random_strings_match_huggingface_rust_tokenizer()
    {
        var rng = new Random(20261201);
        var failures = new List<string>();
        const int count = 1500;
        for (var i = 0; i < count; i++)
        {
            var text = DifferentialTests.RandomText(rng);
            var expected = Array.ConvertAll(Rust.Value.Encode(text), x => (int)x);
            var actual = Ours.Value.EncodeToIdArray(text);
            if (!expected.AsSpan().SequenceEqual(actual))
            {
                failures.Add($"#{i} {JsonSerializer.Serialize(text)}: rust [{string.Join(',', expected)}] ours [{string.Join(',', actual)}]");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {count} differ:\n{string.Join('\n', failures.Take(10))}");
    }
}
