using System.Text;
using System.Text.Json;

namespace GemmaScope.Tokenizers.Tests;

/// <summary>
/// A small tokenizer.json shaped like Gemma's (BPE with byte fallback, Replace normalizer, Split pre-tokenizer,
/// TemplateProcessing with &lt;bos&gt;), generated in code; each part can be replaced verbatim to build one defect.
/// </summary>
internal static class TokenizerCorpus
{
    public static readonly string[] Pieces = ["\u2581", "a", "b", "c", "d", "e", "h", "l", "o", "r", "w", "ab", "ba", "\u2581a", "he", "ll", "llo", "hello", "\u2581ab"];

    public static readonly (string, string)[] Merges = [("a", "b"), ("b", "a"), ("\u2581", "a"), ("h", "e"), ("l", "l"), ("ll", "o"), ("he", "llo"), ("\u2581a", "b")];

    public static readonly string[] Probes = ["hello ab ba", "ab", "ba", "hello world", "zq!", "<start_of_turn>x", "h\u00e9llo abba", ""];

    /// <summary>Piece -> id: &lt;pad&gt; &lt;eos&gt; &lt;bos&gt; &lt;unk&gt;, the 256 byte tokens, then <see cref="Pieces"/>.</summary>
    public static List<(string Piece, int Id)> VocabEntries(bool byteTokens = true)
    {
        var list = new List<(string, int)> { ("<pad>", 0), ("<eos>", 1), ("<bos>", 2), ("<unk>", 3) };
        if (byteTokens)
        {
            for (int b = 0; b < 256; b++)
            {
                list.Add(($"<0x{b:X2}>", list.Count));
            }
        }

        foreach (var p in Pieces)
        {
            list.Add((p, list.Count));
        }

        list.Add(("<start_of_turn>", list.Count));
        return list;
    }

    public static string VocabJson(IEnumerable<(string Piece, int Id)> entries) =>
        "{" + string.Join(",", entries.Select(e => $"{JsonSerializer.Serialize(e.Piece)}:{e.Id}")) + "}";

    public static string MergesJson(IEnumerable<(string, string)> merges) =>
        "[" + string.Join(",", merges.Select(m => $"[{JsonSerializer.Serialize(m.Item1)},{JsonSerializer.Serialize(m.Item2)}]")) + "]";

    public const string Normalizer = "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}";
    public const string PreTokenizer = "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"MergedWithPrevious\",\"invert\":false}";
    public const string PostProcessor = "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<bos>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}]," +
        "\"pair\":[{\"SpecialToken\":{\"id\":\"<bos>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}]," +
        "\"special_tokens\":{\"<bos>\":{\"id\":\"<bos>\",\"ids\":[2],\"tokens\":[\"<bos>\"]}}}";

    public const string Decoder = "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}";

    public static string Added(int startOfTurnId) =>
        "[" + string.Join(",", new[] { ("<pad>", 0), ("<eos>", 1), ("<bos>", 2), ("<unk>", 3), ("<start_of_turn>", startOfTurnId) }.Select(a =>
            $"{{\"id\":{a.Item2},\"content\":\"{a.Item1}\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}}")) + "]";

    /// <summary>The whole file; every argument is JSON text placed verbatim.</summary>
    public static string Json(string modelType = "\"BPE\"", string byteFallback = "true", string normalizer = Normalizer, string preTokenizer = PreTokenizer,
        string postProcessor = PostProcessor, string? added = null, string? vocab = null, string? merges = null, string modelExtra = "", string unk = "\"<unk>\"", string tail = "")
    {
        var entries = VocabEntries();
        added ??= Added(entries.Count - 1);
        vocab ??= VocabJson(entries);
        merges ??= MergesJson(Merges);
        return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":" + added + ",\"normalizer\":" + normalizer + ",\"pre_tokenizer\":" + preTokenizer +
            ",\"post_processor\":" + postProcessor + ",\"decoder\":" + Decoder +
            ",\"model\":{\"type\":" + modelType + ",\"dropout\":null,\"unk_token\":" + unk + ",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":" + byteFallback +
            ",\"ignore_merges\":false,\"vocab\":" + vocab + ",\"merges\":" + merges + modelExtra + "}}" + tail;
    }

    public static string Write(string name, string json) => Write(name, Encoding.UTF8.GetBytes(json));

    public static string Write(string name, byte[] bytes) => TestFixtures.WriteScratch(Path.Combine("corpus", name), bytes);
}
