using BenchmarkDotNet.Attributes;
using GemmaScope.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Gemma 2 2B-shaped checkpoint (real widths, <see cref="Bench.Layers"/> layers, random weights), loaded with
/// <c>GemmaModel.FromPretrained</c>, against baselines measured in the same process: the same GEMMs alone in ORT
/// (<see cref="GemmGraph"/>) for prefill, and a streaming read of a 1 GiB buffer for decode. Each benchmark sets up
/// only what it needs and releases it after, so that at most one copy of the weights is resident at a time.
/// </summary>
public class Gemma2Shaped
{
    private GemmaModel? _model;
    private InferenceSession? _gemms;
    private string[] _inNames = [], _outNames = [];
    private OrtValue[] _in = [], _out = [];
    private StreamRead? _stream;
    private int[] _prefill = [];
    private int[] _prompt = [];
    private HookPoint[] _all = [];
    private HookPoint[] _middle = [];

    [GlobalSetup(Target = nameof(OrtGemms128))]
    public void SetupGemms128() => SetupGemms(Bench.PrefillTokens);

    [GlobalSetup(Target = nameof(OrtGemms1))]
    public void SetupGemms1() => SetupGemms(1);

    private void SetupGemms(int tokens)
    {
        string ckpt = Bench.Checkpoint(bf16: false);
        var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Bench.Threads, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        _gemms = new InferenceSession(GemmGraph.Write(ckpt), so);
        so.Dispose();
        BindGemms(tokens);
    }

    /// <summary>Uses another instance's GEMM session with inputs of <paramref name="tokens"/> tokens (one packed copy of the weights for both).</summary>
    internal void ShareGemms(Gemma2Shaped owner, int tokens)
    {
        _gemms = owner._gemms;
        BindGemms(tokens);
    }

    /// <summary>Disposes only the bound values of a <see cref="ShareGemms"/> instance.</summary>
    internal void ReleaseShared()
    {
        foreach (var v in _in.Concat(_out))
        {
            v.Dispose();
        }

        _in = _out = [];
        _gemms = null;
    }

    private void BindGemms(int t)
    {
        const int D = CheckpointGenerator.DModel, H = CheckpointGenerator.Heads, Hd = CheckpointGenerator.HeadDim;
        var rng = new Random(3);
        OrtValue Make(long[] shape)
        {
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = rng.NextSingle() * 2 - 1;
            }

            return OrtValue.CreateTensorValueFromMemory(data, shape);
        }

        _inNames = ["x_d", "x_z", "x_ff", "q", "kt", "p", "v"];
        _in = [Make([t, D]), Make([t, H * Hd]), Make([t, CheckpointGenerator.DFf]), Make([H, t, Hd]), Make([H, Hd, t]), Make([H, t, t]), Make([H, t, Hd])];
        _outNames = [.. _gemms!.OutputNames];
        _out = [.. _outNames.Select(n => OrtValue.CreateTensorValueFromMemory(new float[OutputShape(n, t).Aggregate(1L, (a, b) => a * b)], OutputShape(n, t)))];
    }

    private static long[] OutputShape(string name, int t)
    {
        const int D = CheckpointGenerator.DModel, H = CheckpointGenerator.Heads, Hd = CheckpointGenerator.HeadDim, KvW = CheckpointGenerator.KvHeads * Hd;
        return name switch
        {
            "y_lm_head" => [t, CheckpointGenerator.Vocab],
            _ when name.EndsWith("_scores", StringComparison.Ordinal) => [H, t, t],
            _ when name.EndsWith("_pv", StringComparison.Ordinal) => [H, t, Hd],
            _ when name.EndsWith("q_proj", StringComparison.Ordinal) => [t, H * Hd],
            _ when name.EndsWith("k_proj", StringComparison.Ordinal) || name.EndsWith("v_proj", StringComparison.Ordinal) => [t, KvW],
            _ when name.EndsWith("gate_proj", StringComparison.Ordinal) || name.EndsWith("up_proj", StringComparison.Ordinal) => [t, CheckpointGenerator.DFf],
            _ => [t, D],
        };
    }

    /// <summary>Baseline for prefill: every GEMM of a 128-token forward (layers, attention products, LM head), alone, in ORT.</summary>
    [Benchmark(Description = "ORT: the same GEMMs alone, 128 tokens")]
    public void OrtGemms128() => _gemms!.Run(new RunOptions(), _inNames, _in, _outNames, _out);

    /// <summary>Second decode bound: the same GEMMs at 1 token, i.e. ORT streaming every weight once.</summary>
    [Benchmark(Description = "ORT: the same GEMMs alone, 1 token")]
    public void OrtGemms1() => _gemms!.Run(new RunOptions(), _inNames, _in, _outNames, _out);

    [GlobalCleanup(Targets = [nameof(OrtGemms128), nameof(OrtGemms1)])]
    public void CleanupGemms()
    {
        foreach (var v in _in.Concat(_out))
        {
            v.Dispose();
        }

        _in = _out = [];
        _gemms?.Dispose();
        _gemms = null;
    }

    [GlobalSetup(Target = nameof(StreamRead1GiB))]
    public void SetupStream() => _stream = new StreamRead(1L << 30, Bench.Threads);

    /// <summary>Memory bandwidth: sum of a 1 GiB buffer (32× the L3 here), all threads.</summary>
    [Benchmark(Description = "stream read 1 GiB (bandwidth probe)")]
    public double StreamRead1GiB() => _stream!.Run();

    [GlobalCleanup(Target = nameof(StreamRead1GiB))]
    public void CleanupStream()
    {
        _stream?.Dispose();
        _stream = null;
    }

    [GlobalSetup(Targets = [nameof(Prefill128), nameof(Prefill128CaptureAll), nameof(Generate1), nameof(GenerateN), nameof(StopAtMiddle), nameof(FullSameCapture)])]
    public void SetupModel()
    {
        _model = ModelHost.Open(Bench.Checkpoint(bf16: false));
        _prefill = Bench.Ids(Bench.PrefillTokens);
        _prompt = Bench.Ids(Bench.DecodePrompt, seed: 2);
        _all = ModelHost.AllSites(_model.LayerCount);
        _middle = [HookPoint.ResidPost((_model.LayerCount / 2) - 1)];
        _ = _model.Run(_prefill.AsSpan(0, 4), _all); // builds and caches the capture plans outside the timing
        _ = _model.Run(_prefill.AsSpan(0, 4), _middle);
        _ = _model.Run(_prefill.AsSpan(0, 4), _middle, logits: false);
    }

    /// <summary>Prefill, 128 tokens, logits, no capture.</summary>
    [Benchmark(Description = "model: prefill 128 tokens (logits)")]
    public float Prefill128() => _model!.Run(_prefill).Logits()[0];

    /// <summary>Prefill, 128 tokens, logits, every hook of every layer captured.</summary>
    [Benchmark(Description = "model: prefill 128 tokens (logits) + capture all hooks of all layers")]
    public float Prefill128CaptureAll() => _model!.Run(_prefill, _all).Logits()[0];

    /// <summary>Generation with the KV cache: the prompt plus one token.</summary>
    [Benchmark(Description = "model: generate 1 token after 16 (KV cache)")]
    public int Generate1() => _model!.Generate(_prompt, new GenerationOptions { MaxNewTokens = 1, EosId = null, UseKvCache = true }).NewIds.Count;

    /// <summary>Generation with the KV cache: the prompt plus <see cref="Bench.DecodeSteps"/> tokens.</summary>
    [Benchmark(Description = "model: generate 9 tokens after 16 (KV cache)")]
    public int GenerateN() => _model!.Generate(_prompt, new GenerationOptions { MaxNewTokens = Bench.DecodeSteps, EosId = null, UseKvCache = true }).NewIds.Count;

    /// <summary>128 tokens, capture resid_post of the middle layer, no logits: the graph stops there (stop_at_layer).</summary>
    [Benchmark(Description = "model: 128 tokens, capture middle resid_post, logits: false (stops there)")]
    public float StopAtMiddle() => _model!.Run(_prefill, _middle, logits: false).Activations(_middle[0])[0];

    /// <summary>The same capture with logits: every layer and the LM head run.</summary>
    [Benchmark(Description = "model: 128 tokens, capture middle resid_post, logits (full graph)")]
    public float FullSameCapture() => _model!.Run(_prefill, _middle).Activations(_middle[0])[0];

    /// <summary>The stop-at-layer pair for the interleaved mode.</summary>
    internal IEnumerable<(string Name, Action Act)> StopCases() => [("stop", () => StopAtMiddle()), ("full", () => FullSameCapture())];

    [GlobalCleanup(Targets = [nameof(Prefill128), nameof(Prefill128CaptureAll), nameof(Generate1), nameof(GenerateN), nameof(StopAtMiddle), nameof(FullSameCapture)])]
    public void CleanupModel()
    {
        _model?.Dispose();
        _model = null;
        GC.Collect();
    }
}
