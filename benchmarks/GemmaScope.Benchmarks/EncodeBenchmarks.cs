using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Encode [tokens × d_in] → [tokens × d_sae]: ours (fp32, bf16; W_enc panel copy built in setup, not timed) against ORT
/// MatMul alone (the baseline) and, where memory allows, ORT running the same JumpReLU graph, all with the same thread
/// count. Outputs are preallocated for everyone (ORT binds caller memory); EncodeSparse fills a reused buffer.
/// </summary>
public abstract class EncodeBenchmarksBase : IDisposable
{
    private float[] _x = [];
    private float[] _f = [];
    private JumpReLUSae _fp32 = null!;
    private JumpReLUSae _bf16 = null!;
    private InferenceSession _ortMatMul = null!;
    private OrtBuffers _buffers = null!;
    private readonly SparseFeatureBuffer _sparse = new();
    private string[] _in = ["x"];
    private string[] _outY = ["y"];

    /// <summary>Tokens per call: the same sweep at every width.</summary>
    [Params(1, 4, 8, 16, 32, 64, 128, 256, 1024)]
    public int Tokens { get; set; }

    /// <summary>Threads for us (MaxDegreeOfParallelism) and ORT (IntraOpNumThreads).</summary>
    [Params(2)]
    public int Threads { get; set; }

    /// <summary>SAE width (each width's [Params] has Priority 1: its column follows Tokens and Threads).</summary>
    public abstract int DSae { get; set; }

    /// <summary>x and f, bound for ORT.</summary>
    internal OrtBuffers Buffers => _buffers;

    [GlobalSetup]
    public virtual void Setup()
    {
        int dIn = Workloads.DInFor(DSae);
        _x = Workloads.Activations(Tokens, dIn);
        _f = new float[Tokens * DSae];
        _fp32 = Workloads.Sae(DSae, bf16: false, Threads);
        _bf16 = Workloads.Sae(DSae, bf16: true, Threads);
        _ortMatMul = Workloads.Ort("matmul", DSae, Threads);
        _buffers = new OrtBuffers(_x, [Tokens, dIn], _f, [Tokens, DSae]);

        // Build the one-time panel copies outside the timed region (their cost is stated in the README). A 2-token
        // call builds synchronously; a 1-token call would only start a background build.
        var x2 = Workloads.Activations(2, dIn);
        var f2 = new float[2 * DSae];
        _fp32.Encode(x2, f2);
        _bf16.Encode(x2, f2);
        _fp32.Encode(_x, _f);
        _bf16.Encode(_x, _f);
        Workloads.NotePath(Tokens, Threads, DSae, _fp32, _bf16);
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    [Benchmark(Baseline = true, Description = "ORT MatMul only")]
    public void OrtMatMul() => _buffers.Run(_ortMatMul, _in, _outY);

    [Benchmark(Description = "GemmaScope fp32")]
    public void Fp32() => _fp32.Encode(_x, _f);

    [Benchmark(Description = "GemmaScope bf16")]
    public void Bf16() => _bf16.Encode(_x, _f);

    [Benchmark(Description = "GemmaScope fp32 EncodeSparse")]
    public int Fp32Sparse()
    {
        _fp32.EncodeSparse(_x, _sparse);
        return _sparse.TokenCount;
    }

    public void Dispose()
    {
        _buffers?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Gemma Scope 2B residual, 2304 × 16384: the token sweep, with the JumpReLU graph as a second baseline.</summary>
public class Encode16k : EncodeBenchmarksBase
{
    private InferenceSession _ortGraph = null!;
    private string[] _in = ["x"];
    private string[] _outF = ["f"];

    [Params(16384, Priority = 1)]
    public override int DSae { get; set; }

    public override void Setup()
    {
        base.Setup();
        _ortGraph = Workloads.Ort("jumprelu", DSae, Threads);
    }

    [Benchmark(Description = "ORT JumpReLU graph")]
    public void OrtGraph() => Buffers.Run(_ortGraph, _in, _outF);
}

/// <summary>
/// Gemma Scope 9B width 131k, 3584 × 131072 (W_enc 1.9 GB fp32): the token sweep against ORT MatMul alone. The JumpReLU
/// graph is left out here: a second ORT session would hold another 1.9 GB (plus its build copies) on a shared machine.
/// Fewer iterations: one 1024-token call is ~1 TFLOP.
/// </summary>
[WarmupCount(1)]
[IterationCount(3)]
public class Encode131k : EncodeBenchmarksBase
{
    [Params(131072, Priority = 1)]
    public override int DSae { get; set; }
}
