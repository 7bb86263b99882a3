using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace GemmaScope.Tokenizers.Benchmarks;

/// <summary>The texts and tokenizer files the benchmarks read, prepared once per process.</summary>
internal static class Workloads
{
    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>The 116 golden texts (short and medium: chat turns, code, scripts, whitespace, long repeats).</summary>
    public static string[] Golden { get; } = File.ReadLines(Path.Combine(FixtureDir, "golden-ids.jsonl"))
        .Where(l => l.Length > 0)
        .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!)
        .ToArray();

    /// <summary>About 4 MB: the golden texts joined by blank lines, repeated, as one document.</summary>
    public static string Corpus { get; } = BuildCorpus(4_000_000);

    private static string BuildCorpus(int chars)
    {
        var sb = new StringBuilder(chars + 100_000);
        while (sb.Length < chars)
        {
            foreach (string t in Golden)
            {
                sb.Append(t).Append("\n\n");
            }
        }

        return sb.ToString();
    }

    public static string Unpack(string gz, string name)
    {
        string path = Path.Combine(Path.GetTempPath(), $"gemmascope-bench-{Environment.ProcessId}", name);
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var input = new GZipStream(File.OpenRead(Path.Combine(FixtureDir, gz)), CompressionMode.Decompress);
            using var output = File.Create(path);
            input.CopyTo(output);
        }

        return path;
    }

    public static string TokenizerJsonPath => Unpack("tokenizer.json.gz", "tokenizer.json");

    public static string TokenizerModelPath => Unpack("tokenizer.rebuilt.model.gz", "tokenizer.model");
}
