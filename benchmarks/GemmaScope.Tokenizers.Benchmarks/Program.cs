using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GemmaScope.Tokenizers;
using GemmaScope.Tokenizers.Benchmarks;

// "quick": a Stopwatch loop for fast iteration while optimising; otherwise BenchmarkDotNet
// (e.g. `-- --job short --filter *`), followed by a markdown table of tokens/s and speed vs Rust.
if (args.Length > 0 && args[0] == "quick")
{
    Quick(args.Length > 1 && args[1] == "nocache" ? 0 : GemmaTokenizerOptions.DefaultCacheCapacity);
    return;
}

Summary[] summaries = [.. BenchmarkSwitcher.FromAssembly(typeof(TokenizerBenchmarks).Assembly).Run(args)];
var hf = GemmaTokenizer.FromTokenizerJson(Workloads.TokenizerJsonPath);
var table = new StringBuilder();
table.AppendLine("| workload | chars | HF tokens | implementation | mean time | tokens/s | speed vs Rust |");
table.AppendLine("| --- | ---: | ---: | --- | ---: | ---: | ---: |");
foreach (var summary in summaries)
{
    var groups = summary.Reports.Where(r => r.ResultStatistics is not null).GroupBy(r => r.BenchmarkCase.Parameters["Workload"]?.ToString() ?? "");
    foreach (var g in groups)
    {
        string[] texts = Workloads.Get(g.Key);
        long tokens = texts.Sum(t => (long)hf.EncodeToIdArray(t).Length);
        long chars = texts.Sum(t => (long)t.Length);
        double rustNs = g.First(r => r.BenchmarkCase.Descriptor.Baseline).ResultStatistics!.Mean;
        foreach (var r in g)
        {
            double ns = r.ResultStatistics!.Mean;
            table.AppendLine(CultureInfo.InvariantCulture, $"| {g.Key} | {chars:N0} | {tokens:N0} | {r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo} | {Format(ns)} | {tokens / (ns * 1e-9) / 1e6:F2} M | {rustNs / ns:F2}x |");
        }
    }
}

Console.WriteLine(table);
File.WriteAllText(Path.Combine(Directory.GetCurrentDirectory(), "tokenizers-benchmark-table.md"), table.ToString());

static string Format(double ns) => ns >= 1e6 ? $"{ns / 1e6:F2} ms" : $"{ns / 1e3:F1} us";

static void Quick(int cacheCapacity)
{
    string jsonPath = Workloads.TokenizerJsonPath, modelPath = Workloads.TokenizerModelPath;
    for (int i = 0; i < 3; i++)
    {
        var load = Stopwatch.StartNew();
        _ = GemmaTokenizer.FromTokenizerJson(jsonPath);
        double jsonMs = load.Elapsed.TotalMilliseconds;
        load.Restart();
        _ = GemmaTokenizer.FromSentencePieceModel(modelPath);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load: tokenizer.json {jsonMs:F0} ms, tokenizer.model {load.Elapsed.TotalMilliseconds:F0} ms"));
    }

    var ours = GemmaTokenizer.FromTokenizerJson(jsonPath, new GemmaTokenizerOptions { CacheCapacity = cacheCapacity });
    using var rust = new global::Tokenizers.DotNet.Tokenizer(Workloads.TokenizerJsonPath);
    var ids = new List<int>(1 << 20);
    foreach (string name in new[] { "golden", "corpus", "docs" })
    {
        string[] texts = Workloads.Get(name);
        long same = texts.Count(t => rust.Encode(t).Select(x => (int)x).SequenceEqual(ours.EncodeToIdArray(t)));
        Console.WriteLine($"{name}: {same} of {texts.Length} texts give identical ids in ours and Rust");
        for (int round = 0; round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            long n = 0;
            int reps = name == "golden" ? 200 : 3;
            for (int rep = 0; rep < reps; rep++)
            {
                foreach (string t in texts)
                {
                    ids.Clear();
                    n += ours.EncodeToIds(t, ids);
                }
            }

            double oursRate = n / sw.Elapsed.TotalSeconds;
            sw.Restart();
            n = 0;
            for (int rep = 0; rep < reps; rep++)
            {
                foreach (string t in texts)
                {
                    n += rust.Encode(t).Length;
                }
            }

            double rustRate = n / sw.Elapsed.TotalSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: ours {oursRate / 1e6:F2} M tok/s, rust {rustRate / 1e6:F2} M tok/s, ratio {oursRate / rustRate:F2}"));
        }
    }
}
