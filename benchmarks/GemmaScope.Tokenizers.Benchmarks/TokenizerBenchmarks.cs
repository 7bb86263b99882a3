using BenchmarkDotNet.Attributes;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Tokenizers.Benchmarks;

/// <summary>
/// Encode throughput, one thread: ours (managed, tokenizer.json; with and without its run cache, which
/// plays the part of HF's word cache), Hugging Face's Rust tokenizers through
/// Tokenizers.DotNet (baseline), and Microsoft.ML.Tokenizers' SentencePieceTokenizer on the rebuilt .model.
/// Each operation encodes the whole workload; tokens/s = HF token count / mean time.
/// </summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private GemmaTokenizer _ours = null!;
    private GemmaTokenizer _oursNoCache = null!;
    private global::Tokenizers.DotNet.Tokenizer _rust = null!;
    private SentencePieceTokenizer _ml = null!;
    private string[] _texts = [];
    private readonly List<int> _ids = new(1 << 20);

    /// <summary>golden: the 116 golden texts, one encode call each; corpus: them repeated to ~4 MB, in one call; docs: ~4 MB of distinct real lines, in one call.</summary>
    [Params("golden", "corpus", "docs")]
    public string Workload { get; set; } = "golden";

    [GlobalSetup]
    public void Setup()
    {
        _ours = GemmaTokenizer.FromTokenizerJson(Workloads.TokenizerJsonPath);
        _oursNoCache = GemmaTokenizer.FromTokenizerJson(Workloads.TokenizerJsonPath, new GemmaTokenizerOptions { CacheCapacity = 0 });
        _rust = new global::Tokenizers.DotNet.Tokenizer(Workloads.TokenizerJsonPath);
        using (var s = File.OpenRead(Workloads.TokenizerModelPath))
        {
            _ml = SentencePieceTokenizer.Create(s, true, false);
        }

        _texts = Workloads.Get(Workload);
    }

    [Benchmark(Baseline = true, Description = "HF Rust (Tokenizers.DotNet)")]
    public int Rust()
    {
        int n = 0;
        foreach (string t in _texts)
        {
            n += _rust.Encode(t).Length;
        }

        return n;
    }

    [Benchmark(Description = "GemmaTokenizer (managed)")]
    public int Ours() => EncodeAll(_ours);

    [Benchmark(Description = "GemmaTokenizer (managed, run cache off)")]
    public int OursNoCache() => EncodeAll(_oursNoCache);

    [Benchmark(Description = "ML.Tokenizers SentencePiece")]
    public int MlTokenizers()
    {
        int n = 0;
        foreach (string t in _texts)
        {
            n += _ml.EncodeToIds(t).Count;
        }

        return n;
    }

    /// <summary>Ours on the workload, into one reused id list: the token count.</summary>
    private int EncodeAll(GemmaTokenizer tokenizer)
    {
        int n = 0;
        foreach (string t in _texts)
        {
            _ids.Clear();
            n += tokenizer.EncodeToIds(t, _ids);
        }

        return n;
    }
}
