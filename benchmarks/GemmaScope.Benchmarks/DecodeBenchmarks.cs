using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Decode one token with L0 = 70 active features (d_sae 16384, d_in 2304): sparse decode (L0 × d_in) against ORT's dense
/// f·W_dec MatMul of the same features (d_sae × d_in) and our dense-input Decode (scans f, skips zeros).
/// </summary>
public class Decode16k : IDisposable
{
    private const int DSae = 16384;
    private readonly int[] _indices = new int[70];
    private readonly float[] _values = new float[70];
    private float[] _f = [];
    private float[] _xhat = [];
    private JumpReLUSae _fp32 = null!;
    private JumpReLUSae _bf16 = null!;
    private InferenceSession _ort = null!;
    private OrtBuffers _buffers = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        _f = new float[DSae];
        var set = new HashSet<int>();
        while (set.Count < _indices.Length)
        {
            set.Add(rng.Next(DSae));
        }

        int k = 0;
        foreach (int j in set.Order())
        {
            _indices[k] = j;
            _values[k] = 0.1f + rng.NextSingle();
            _f[j] = _values[k++];
        }

        _xhat = new float[Workloads.DIn];
        _fp32 = Workloads.Sae(DSae, bf16: false, Threads);
        _bf16 = Workloads.Sae(DSae, bf16: true, Threads);
        _ort = Workloads.Ort("decode", DSae, Threads);
        _buffers = new OrtBuffers(_f, [1, DSae], _xhat, [1, Workloads.DIn]);
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    [Benchmark(Baseline = true, Description = "ORT dense MatMul f·W_dec")]
    public void OrtDense() => _buffers.Run(_ort, ["x"], ["y"]);

    [Benchmark(Description = "GemmaScope Decode (dense f, zeros skipped)")]
    public void DenseInput() => _fp32.Decode(_f, _xhat);

    [Benchmark(Description = "GemmaScope DecodeSparse fp32")]
    public void SparseFp32() => _fp32.DecodeSparse(_indices, _values, _xhat);

    [Benchmark(Description = "GemmaScope DecodeSparse bf16")]
    public void SparseBf16() => _bf16.DecodeSparse(_indices, _values, _xhat);

    public void Dispose()
    {
        _buffers?.Dispose();
        GC.SuppressFinalize(this);
    }
}
