using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Encode [tokens × 2304] → [tokens × d_sae]: ours (fp32, bf16) against ORT running the same JumpReLU graph and ORT
/// MatMul alone, all with the same thread count. Outputs are preallocated for everyone (ORT binds caller memory).
/// </summary>
public abstract class EncodeBenchmarksBase : IDisposable
{
    private float[] _x = [];
    private float[] _f = [];
    private JumpReLUSae _fp32 = null!;
    private JumpReLUSae _bf16 = null!;
    private InferenceSession _ortGraph = null!;
    private InferenceSession _ortMatMul = null!;
    private OrtValue _xOrt = null!;
    private OrtValue _fOrt = null!;
    private RunOptions _run = null!;
    private string[] _in = ["x"];
    private string[] _outF = ["f"];
    private string[] _outY = ["y"];

    /// <summary>Tokens per call.</summary>
    public abstract int Tokens { get; set; }

    /// <summary>Threads for us (MaxDegreeOfParallelism) and ORT (IntraOpNumThreads).</summary>
    public abstract int Threads { get; set; }

    /// <summary>SAE width.</summary>
    public abstract int DSae { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _x = Workloads.Activations(Tokens);
        _f = new float[Tokens * DSae];
        _fp32 = Workloads.Sae(DSae, bf16: false, Threads);
        _bf16 = Workloads.Sae(DSae, bf16: true, Threads);
        _ortGraph = Workloads.Ort("jumprelu", DSae, Threads);
        _ortMatMul = Workloads.Ort("matmul", DSae, Threads);
        _xOrt = OrtValue.CreateTensorValueFromMemory(_x, [Tokens, Workloads.DIn]);
        _fOrt = OrtValue.CreateTensorValueFromMemory(_f, [Tokens, DSae]);
        _run = new RunOptions();
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    [Benchmark(Baseline = true, Description = "ORT JumpReLU graph")]
    public void OrtGraph() => _ortGraph.Run(_run, _in, [_xOrt], _outF, [_fOrt]);

    [Benchmark(Description = "ORT MatMul only")]
    public void OrtMatMul() => _ortMatMul.Run(_run, _in, [_xOrt], _outY, [_fOrt]);

    [Benchmark(Description = "GemmaScope fp32")]
    public void Fp32() => _fp32.Encode(_x, _f);

    [Benchmark(Description = "GemmaScope bf16")]
    public void Bf16() => _bf16.Encode(_x, _f);

    [Benchmark(Description = "GemmaScope fp32 EncodeSparse")]
    public int Fp32Sparse() => _fp32.EncodeSparse(_x).TokenCount;

    public void Dispose()
    {
        _xOrt?.Dispose();
        _fOrt?.Dispose();
        _run?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Gemma Scope 2B residual width 16k.</summary>
public class Encode16k : EncodeBenchmarksBase
{
    [Params(1, 16, 128, 1024)]
    public override int Tokens { get; set; }

    [Params(1, 2)]
    public override int Threads { get; set; }

    [Params(16384)]
    public override int DSae { get; set; }
}

/// <summary>Width 65k, 2 threads.</summary>
public class Encode65k : EncodeBenchmarksBase
{
    [Params(1, 128)]
    public override int Tokens { get; set; }

    [Params(2)]
    public override int Threads { get; set; }

    [Params(65536)]
    public override int DSae { get; set; }
}
