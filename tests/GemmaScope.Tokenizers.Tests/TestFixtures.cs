using System.IO.Compression;
using System.Text.Json;

namespace GemmaScope.Tokenizers.Tests;

/// <summary>The fixture files (see Fixtures/README.md), unpacked and loaded once per test run.</summary>
internal static class TestFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    private static readonly Lazy<byte[]> s_jsonBytes = new(() => Gunzip("tokenizer.json.gz"));
    private static readonly Lazy<byte[]> s_modelBytes = new(() => Gunzip("tokenizer.rebuilt.model.gz"));
    private static readonly Lazy<GemmaTokenizer> s_json = new(() => GemmaTokenizer.FromTokenizerJson(new MemoryStream(JsonBytes), sourceName: "tokenizer.json"));
    private static readonly Lazy<GemmaTokenizer> s_model = new(() => GemmaTokenizer.FromSentencePieceModel(new MemoryStream(ModelBytes), sourceName: "tokenizer.rebuilt.model"));
    private static readonly Lazy<string> s_jsonPath = new(() => WriteScratch("tokenizer.json", JsonBytes));

    /// <summary>This test run's scratch folder: one per process, left in place so that a failing case's file can be looked at.</summary>
    public static string Scratch { get; } = Path.Combine(Path.GetTempPath(), $"gemmascope-tok-{Environment.ProcessId}");

    public static byte[] JsonBytes => s_jsonBytes.Value;

    public static byte[] ModelBytes => s_modelBytes.Value;

    /// <summary>Gemma 2's tokenizer.json unpacked to a temp file (for the oracle and path-based loading).</summary>
    public static string JsonPath => s_jsonPath.Value;

    public static GemmaTokenizer Json => s_json.Value;

    public static GemmaTokenizer Model => s_model.Value;

    public static IReadOnlyList<(string Text, int[] Ids)> Golden { get; } = ReadJsonl("golden-ids.jsonl");

    /// <summary>Texts with control tokens written literally, with SentencePiece C++'s ids (make_sp_control_literals.py).</summary>
    public static IReadOnlyList<(string Text, int[] Ids)> SentencePieceControlLiterals { get; } = ReadJsonl("sp-control-literals.jsonl");

    public static IEnumerable<object[]> GoldenIndices() => Enumerable.Range(0, Golden.Count).Select(i => new object[] { i });

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="relativePath"/> under <see cref="Scratch"/> (making its folders); returns the full path.</summary>
    public static string WriteScratch(string relativePath, byte[] bytes)
    {
        string path = Path.Combine(Scratch, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A gzipped fixture, unpacked; <paramref name="name"/> is relative to <see cref="Dir"/>.</summary>
    public static byte[] Gunzip(string name)
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Dir, name)), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    private static List<(string, int[])> ReadJsonl(string name)
    {
        var list = new List<(string, int[])>();
        foreach (string line in File.ReadLines(Path.Combine(Dir, name)))
        {
            if (line.Length == 0)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(line);
            list.Add((doc.RootElement.GetProperty("text").GetString()!, doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()));
        }

        return list;
    }
}
