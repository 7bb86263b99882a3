using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Reports;
using GemmaScope.Formats;
using GemmaScope.Kernels;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// The model's GEMMs (issue 19): y = x·Wᵀ with W [out, in] as Gemma 2 2B stores it, for tokens 1–1024. Ours reads W in
/// place (fp32, and the same values rounded to bf16); ORT gets the same fp32 values as a MatMul on the transposed
/// [in, out] initializer (the baseline) and as com.microsoft FusedMatMul with transB on the [out, in] one. Everyone uses
/// the same threads (ours: <c>threads</c>; ORT: intra-op, sequential) and writes into preallocated outputs. "Read bf16 W"
/// is a bandwidth probe: the same threads summing the bf16 matrix's bytes once, the floor for a 1-token bf16 call.
/// Threads: all logical CPUs, or <c>GEMM_THREADS</c>.
/// Full run: <c>dotnet run -c Release --project benchmarks/GemmaScope.Benchmarks -- --filter '*MatMulBenchmarks*'</c>.
/// </summary>
public unsafe class MatMulBenchmarks : IDisposable
{
    private static State? _state;
    private float[] _x = [];
    private float[] _y = [];
    private OrtValue _xOrt = null!;
    private OrtValue _yOrt = null!;
    private RunOptions _run = null!;
    private readonly string[] _in = ["x"];
    private readonly string[] _out = ["y"];

    /// <summary>in × out: up/gate_proj, down_proj, q_proj of Gemma 2 2B.</summary>
    [Params("2304x9216", "9216x2304", "2304x2048")]
    public string Shape { get; set; } = "2304x9216";

    [Params(1, 16, 128, 1024)]
    public int Tokens { get; set; } = 1;

    public static int Threads => Environment.GetEnvironmentVariable("GEMM_THREADS") is { } t ? int.Parse(t, CultureInfo.InvariantCulture) : Environment.ProcessorCount;

    private State S => _state!;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        int cols = int.Parse(parts[0], CultureInfo.InvariantCulture), rows = int.Parse(parts[1], CultureInfo.InvariantCulture);
        if (_state is not { } s || s.Rows != rows || s.Cols != cols)
        {
            _state?.Dispose();
            _state = null;
            GC.Collect();
            _state = new State(rows, cols, Threads);
        }

        _x = Workloads.Activations(Tokens, cols);
        _y = new float[(long)Tokens * rows];
        _xOrt = OrtValue.CreateTensorValueFromMemory(_x, [Tokens, cols]);
        _yOrt = OrtValue.CreateTensorValueFromMemory(_y, [Tokens, rows]);
        _run = new RunOptions();
        OrtMatMul();
        OrtFusedMatMulTransB();
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    [Benchmark(Baseline = true, Description = "ORT MatMul (W^T initializer)")]
    public void OrtMatMul() => S.OrtMatMul.Run(_run, _in, [_xOrt], _out, [_yOrt]);

    [Benchmark(Description = "ORT FusedMatMul transB")]
    public void OrtFusedMatMulTransB() => S.OrtTransB.Run(_run, _in, [_xOrt], _out, [_yOrt]);

    [Benchmark(Description = "GemmaScope fp32")]
    public void Fp32() => MatMul.Multiply(_x, Tokens, S.F32, _y, Threads);

    [Benchmark(Description = "GemmaScope bf16")]
    public void Bf16() => MatMul.Multiply(_x, Tokens, S.Bf16, _y, Threads);

    [Benchmark(Description = "Read bf16 W (bandwidth probe)")]
    public ulong ReadBf16() => S.ReadBf16();

    public void Dispose()
    {
        _xOrt?.Dispose();
        _yOrt?.Dispose();
        _run?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The markdown table: per shape and tokens, time, GFLOP/s, ratio ORT MatMul / ours, and bf16 vs the probe.</summary>
    internal static void Table(StringBuilder table, IReadOnlyList<BenchmarkReport> reports, string cpu)
    {
        table.AppendLine(CultureInfo.InvariantCulture, $"CPU: {cpu}; kernel width {KernelSelector.Current}; {CacheSizes.Describe()}; {Threads} threads (ours and ORT intra-op)");
        table.AppendLine();
        table.AppendLine("| in × out | tokens | implementation | mean | GFLOP/s | ORT MatMul / this | probe / this |");
        table.AppendLine("| --- | ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (var g in reports.GroupBy(r => ((string)r.BenchmarkCase.Parameters["Shape"], Convert.ToInt32(r.BenchmarkCase.Parameters["Tokens"], CultureInfo.InvariantCulture))))
        {
            var dims = g.Key.Item1.Split('x');
            double flops = 2.0 * g.Key.Item2 * double.Parse(dims[0], CultureInfo.InvariantCulture) * double.Parse(dims[1], CultureInfo.InvariantCulture);
            double ort = g.FirstOrDefault(r => r.BenchmarkCase.Descriptor.Baseline)?.ResultStatistics!.Mean ?? double.NaN;
            double probe = g.FirstOrDefault(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == nameof(ReadBf16))?.ResultStatistics!.Mean ?? double.NaN;
            foreach (var r in g)
            {
                double ns = r.ResultStatistics!.Mean;
                bool isProbe = r.BenchmarkCase.Descriptor.WorkloadMethod.Name == nameof(ReadBf16);
                string gflops = isProbe ? "" : (flops / ns).ToString("F1", CultureInfo.InvariantCulture);
                string vsProbe = r.BenchmarkCase.Descriptor.WorkloadMethod.Name == nameof(Bf16) ? (probe / ns).ToString("F2", CultureInfo.InvariantCulture) : "";
                table.AppendLine(CultureInfo.InvariantCulture,
                    $"| {g.Key.Item1} | {g.Key.Item2} | {r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo} | {ns / 1e6:F3} ms | {gflops} | {ort / ns:F2}x | {vsProbe} |");
            }
        }
    }

    /// <summary>
    /// Stopwatch A/B for tuning (not the reported numbers): rounds of ORT MatMul, ours fp32, ours bf16 and the probe
    /// one after another, so load from other jobs falls on all alike; the median per call (wall, or process CPU time).
    /// </summary>
    internal static void Quick(string[] shapes, int[] tokens, int rounds)
    {
        // On a shared machine, process CPU time (GEMM_CPUTIME=1) is steadier than wall time; it is only fair with 1 thread.
        bool useCpu = Environment.GetEnvironmentVariable("GEMM_CPUTIME") == "1";
        using var proc = Process.GetCurrentProcess();
        Console.WriteLine(FormattableString.Invariant($"{KernelSelector.Current}; {CacheSizes.Describe()}; {Threads} threads"));
        Console.WriteLine("| in × out | tokens | ORT MatMul | ORT transB | fp32 | bf16 | read bf16 | ORT/fp32 | ORT/bf16 | probe/bf16 |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var shape in shapes)
        {
            foreach (int t in tokens)
            {
                var b = new MatMulBenchmarks { Shape = shape, Tokens = t };
                b.Setup();
                Action[] cases = [b.OrtMatMul, b.OrtFusedMatMulTransB, b.Fp32, b.Bf16, () => b.ReadBf16()];
                var sw0 = Stopwatch.StartNew();
                b.Fp32();
                int reps = Math.Max(1, (int)(20.0 / Math.Max(0.01, sw0.Elapsed.TotalMilliseconds)));
                var times = new List<double>[cases.Length];
                for (int c = 0; c < cases.Length; c++)
                {
                    times[c] = [];
                    cases[c]();
                }

                for (int r = 0; r < rounds; r++)
                {
                    for (int c = 0; c < cases.Length; c++)
                    {
                        var sw = Stopwatch.StartNew();
                        var cpu0 = proc.TotalProcessorTime;
                        for (int i = 0; i < reps; i++)
                        {
                            cases[c]();
                        }

                        proc.Refresh();
                        times[c].Add((useCpu ? (proc.TotalProcessorTime - cpu0).TotalMilliseconds : sw.Elapsed.TotalMilliseconds) / reps);
                    }
                }

                var med = times.Select(l => l.Order().ElementAt(l.Count / 2)).ToArray();
                Console.WriteLine(FormattableString.Invariant(
                    $"| {shape} | {t} | {med[0]:F3} | {med[1]:F3} | {med[2]:F3} | {med[3]:F3} | {med[4]:F3} | {med[0] / med[2]:F2} | {med[0] / med[3]:F2} | {med[4] / med[3]:F2} |"));
                b.Dispose();
            }
        }
    }

    /// <summary>One shape's weights (native memory, as a mapping would give) and ORT sessions, kept across token counts.</summary>
    private sealed class State : IDisposable
    {
        private readonly void* _f32;
        private readonly void* _bf16;
        private readonly int _threads;

        public State(int rows, int cols, int threads)
        {
            Rows = rows;
            Cols = cols;
            _threads = threads;
            long n = (long)rows * cols;
            var w = new float[n];
            var rng = new Random(7 + rows + cols);
            float s = 1f / MathF.Sqrt(cols);
            for (long i = 0; i < n; i++)
            {
                w[i] = ((2f * rng.NextSingle()) - 1f) * s;
            }

            _f32 = NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
            _bf16 = NativeMemory.AlignedAlloc((nuint)(n * 2), 64);
            w.AsSpan().CopyTo(new Span<float>(_f32, (int)n));
            var b = new Span<ushort>(_bf16, (int)n);
            for (long i = 0; i < n; i++)
            {
                b[(int)i] = GemmaScope.Kernels.BFloat16.FromSingle(w[i]);
            }

            F32 = WeightMatrix.Create((nint)_f32, rows, cols, TensorDType.Float32);
            Bf16 = WeightMatrix.Create((nint)_bf16, rows, cols, TensorDType.BFloat16);
            var options = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            OrtTransB = new InferenceSession(OnnxGraphs.MatMulTransB(w, rows, cols), options);
            var wt = new float[n];
            for (int o = 0; o < rows; o++)
            {
                for (int i = 0; i < cols; i++)
                {
                    wt[((long)i * rows) + o] = w[((long)o * cols) + i];
                }
            }

            OrtMatMul = new InferenceSession(OnnxGraphs.MatMul(wt, cols, rows), options);
        }

        public int Rows { get; }

        public int Cols { get; }

        public WeightMatrix F32 { get; }

        public WeightMatrix Bf16 { get; }

        public InferenceSession OrtMatMul { get; }

        public InferenceSession OrtTransB { get; }

        /// <summary>Sums the bf16 matrix's bytes as 64-bit words, split over the threads by contiguous ranges.</summary>
        public ulong ReadBf16()
        {
            long words = (long)Rows * Cols / 4;
            ulong total = 0;
            var gate = new Lock();
            Parallel.For(0, _threads, new ParallelOptions { MaxDegreeOfParallelism = _threads }, p =>
            {
                long a = words * p / _threads, e = words * (p + 1) / _threads;
                ulong* q = (ulong*)_bf16;
                var acc = Vector512<ulong>.Zero;
                long i = a;
                for (; i + 8 <= e; i += 8)
                {
                    acc += Vector512.Load(q + i);
                }

                ulong sum = Vector512.Sum(acc);
                for (; i < e; i++)
                {
                    sum += q[i];
                }

                lock (gate)
                {
                    total += sum;
                }
            });
            return total;
        }

        public void Dispose()
        {
            OrtMatMul.Dispose();
            OrtTransB.Dispose();
            NativeMemory.AlignedFree(_f32);
            NativeMemory.AlignedFree(_bf16);
        }
    }
}
