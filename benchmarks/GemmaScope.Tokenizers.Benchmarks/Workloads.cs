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

    /// <summary>
    /// About 4 MB of real prose with no repeated line: the distinct lines, in order, of every
    /// /usr/share/doc/*/copyright and /usr/share/common-licenses/* file (sorted by path) of a Debian system.
    /// Distinct lines defeat run caches (HF's and ours), so this measures the merge loop itself.
    /// </summary>
    public static string Docs { get; } = BuildDocs(4_000_000);

    private static string BuildDocs(int chars)
    {
        var files = new List<string>();
        if (Directory.Exists("/usr/share/doc"))
        {
            files.AddRange(Directory.GetDirectories("/usr/share/doc").Select(d => Path.Combine(d, "copyright")).Where(File.Exists));
        }

        if (Directory.Exists("/usr/share/common-licenses"))
        {
            files.AddRange(Directory.GetFiles("/usr/share/common-licenses"));
        }

        files.Sort(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var sb = new StringBuilder(chars + 1000);
        foreach (string file in files)
        {
            foreach (string line in File.ReadLines(file))
            {
                if (sb.Length >= chars)
                {
                    return sb.ToString();
                }

                if (seen.Add(line))
                {
                    sb.Append(line).Append('\n');
                }
            }
        }

        if (sb.Length < chars / 2)
        {
            throw new InvalidOperationException($"The 'docs' workload needs Debian's /usr/share/doc/*/copyright files; found only {sb.Length:N0} chars.");
        }

        return sb.ToString();
    }

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

    public static string[] Get(string workload) => workload switch
    {
        "golden" => Golden,
        "corpus" => [Corpus],
        "docs" => [Docs],
        _ => throw new ArgumentException($"Unknown workload '{workload}'.", nameof(workload)),
    };

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
