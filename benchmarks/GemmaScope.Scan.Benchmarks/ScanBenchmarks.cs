using BenchmarkDotNet.Attributes;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

namespace GemmaScope.Scan.Benchmarks;

/// <summary>
/// Scan throughput against its baseline on the same batches: the model forward (capture, no logits) plus EncodeSparse
/// for each SAE, timed alone. The scan's own bookkeeping (statistics, examples, checkpoints, state files) is the
/// difference. Model: GEMMASCOPE_SCAN_BENCH_MODEL (a checkpoint folder) and GEMMASCOPE_SCAN_BENCH_SAE
/// (params.npz@hook), or the tiny test checkpoint and its SAE.
/// </summary>
[MemoryDiagnoser]
public class ScanBenchmarks
{
    private GemmaModel _model = null!;
    private JumpReLUSae _sae = null!;
    private ScanSae[] _saes = null!;
    private TextCorpus _corpus = null!;
    private List<int[][]> _batches = null!;
    private ScanOptions _options = null!;
    private string _dir = null!;

    /// <summary>Contexts per forward pass.</summary>
    [Params(8)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var here = AppContext.BaseDirectory;
        var modelDir = Environment.GetEnvironmentVariable("GEMMASCOPE_SCAN_BENCH_MODEL") ?? Path.Combine(here, "Fixtures", "tiny-gemma2");
        var saeSpec = Environment.GetEnvironmentVariable("GEMMASCOPE_SCAN_BENCH_SAE") ?? Path.Combine(here, "Fixtures", "tiny-gemma2-sae", "params.npz") + "@blocks.2.hook_resid_post";
        int at = saeSpec.LastIndexOf('@');
        _model = GemmaModel.FromPretrained(modelDir);
        _sae = JumpReLUSae.Load(saeSpec[..at], new SaeLoadOptions { Config = new SaeConfig { HookName = saeSpec[(at + 1)..] } });
        _saes = [ScanSae.From(_sae)];
        _dir = Directory.CreateTempSubdirectory("gemmascope-scan-bench-").FullName;
        var corpusFile = Path.Combine(_dir, "corpus.txt");
        var rng = new Random(1);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "Paris", "tower", "river", "light", "green"];
        File.WriteAllLines(corpusFile, Enumerable.Range(0, 200).Select(_ => string.Join(' ', Enumerable.Range(0, rng.Next(5, 40)).Select(_ => words[rng.Next(words.Length)]))));
        _corpus = new TextCorpus([corpusFile]);
        _options = new ScanOptions { ContextLength = 128, BatchSize = Batch, CheckpointEveryBatches = 1_000_000 };

        // The same batches the scan runs: documents joined with BOS, cut into 127 tokens, BOS prefixed.
        var tok = (GemmaTokenizer)_model.Tokenizer!;
        var stream = new List<int>();
        foreach (var line in File.ReadLines(corpusFile))
        {
            if (stream.Count > 0)
            {
                stream.Add(tok.BeginningOfSentenceId);
            }

            stream.AddRange(tok.EncodeToIdArray(line, addSpecialTokens: false));
        }

        var contexts = new List<int[]>();
        for (int i = 0; i < stream.Count; i += 127)
        {
            contexts.Add([tok.BeginningOfSentenceId, .. stream.Skip(i).Take(127)]);
        }

        _batches = [.. contexts.Chunk(Batch)];
    }

    [Benchmark(Baseline = true, Description = "forward + EncodeSparse")]
    public int ForwardAndEncode()
    {
        int active = 0;
        var hooks = _saes.Select(s => s.Hook).ToArray();
        foreach (var batch in _batches)
        {
            var run = _model.RunBatch(batch, capture: hooks, logits: false);
            int rows = batch.Sum(c => c.Length);
            var buf = new float[rows * _sae.InputSize];
            int offset = 0;
            for (int s = 0; s < batch.Length; s++)
            {
                var a = run.Activations(hooks[0], s);
                a.CopyTo(buf.AsSpan(offset));
                offset += a.Length;
            }

            active += _sae.EncodeSparse(buf).Indices.Length;
        }

        return active;
    }

    [Benchmark(Description = "scan (one shard, state written)")]
    public long Scan()
    {
        var part = Path.Combine(_dir, "part");
        if (Directory.Exists(part))
        {
            Directory.Delete(part, recursive: true);
        }

        return new FeatureScan(_model, _saes, _corpus, _options).RunShard(part, 0, 1).TokensCounted;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _model.Dispose();
        _sae.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
