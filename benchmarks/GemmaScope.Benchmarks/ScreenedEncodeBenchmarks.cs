using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using GemmaScope.Kernels;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Exact screened encode (<see cref="SaeLoadOptions.Screening"/>) against ORT MatMul alone (baseline), the ORT JumpReLU
/// graph and our dense fp32 encode, same weights (<see cref="Workloads"/>, 2304 × 16384), same threads, one process.
/// Activations: "gauss" x ~ N(0, 1/3) per dimension (the variance of the workloads' U(−1, 1), so L0 ≈ 90), and
/// "outliers": the same plus four massive dimensions at 50–100 × the others' rms, at fixed positions in every token.
/// For "outliers" the SAE's W_enc rows of those four dimensions are divided by 80 (a trained SAE's encoder does not
/// let a massive dimension swamp every latent), so L0 stays comparable; its own ORT sessions use the same weights.
/// </summary>
public class Screened16k : IDisposable
{
    private float[] _x = [];
    private float[] _f = [];
    private JumpReLUSae _dense = null!;
    private JumpReLUSae _screened = null!;
    private InferenceSession _ortGraph = null!;
    private InferenceSession _ortMatMul = null!;
    private OrtBuffers _buffers = null!;
    private string[] _in = ["x"];
    private string[] _outF = ["f"];
    private string[] _outY = ["y"];

    /// <summary>Tokens per call.</summary>
    [Params(1, 16, 128, 1024)]
    public int Tokens { get; set; }

    /// <summary>Threads for us and ORT.</summary>
    [Params(2)]
    public int Threads { get; set; }

    /// <summary>"gauss" or "outliers".</summary>
    [Params("gauss", "outliers")]
    public string Activations { get; set; } = "gauss";

    private static readonly int[] OutlierDims = [17, 300, 1200, 2000];

    /// <summary>The workload weights, or for "outliers" a copy with the outlier dimensions' W_enc rows divided by 80.</summary>
    internal static Workloads.Weights WeightsFor(string kind) => kind != "outliers" ? Workloads.Get(16384) : Workloads.Cached("woutliers", () =>
    {
        var w = Workloads.Get(16384);
        var wEnc = (float[])w.WEnc.Clone();
        foreach (int d in OutlierDims)
        {
            for (int j = 0; j < 16384; j++)
            {
                wEnc[(d * 16384) + j] /= 80f;
            }
        }

        return w with { WEnc = wEnc };
    });

    /// <summary>Dense or screened SAE of one weight kind (cached).</summary>
    public static JumpReLUSae Sae(string kind, bool screening, int threads) => kind != "outliers" && !screening
        ? Workloads.Sae(16384, bf16: false, threads)
        : Workloads.Cached($"sae{kind}{screening}{threads}", () =>
    {
        var w = WeightsFor(kind);
        var sw = Stopwatch.StartNew();
        var sae = JumpReLUSae.FromArrays(w.WEnc, w.WDec, w.BEnc, w.BDec, w.Threshold, Workloads.DIn, new SaeLoadOptions
        {
            MaxDegreeOfParallelism = threads,
            Validation = SaeValidation.StructureOnly,
            Screening = screening,
        });
        if (screening)
        {
            BuildMs[threads] = sw.Elapsed.TotalMilliseconds;
        }

        return sae;
    });

    /// <summary>ORT session ("matmul" or "jumprelu") for one weight kind.</summary>
    public static InferenceSession Ort(string kind, string graph, int threads) => kind != "outliers" ? Workloads.Ort(graph, 16384, threads) : Workloads.Cached($"ort{kind}{graph}{threads}", () =>
    {
        var w = WeightsFor(kind);
        byte[] model = graph == "matmul" ? OnnxGraphs.MatMul(w.WEnc, Workloads.DIn, 16384) : OnnxGraphs.JumpReLU(w.WEnc, w.BEnc, w.Threshold, Workloads.DIn, 16384);
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        return new InferenceSession(model, options);
    });

    /// <summary>The SAE loaded with screening (cached per thread count).</summary>
    public static JumpReLUSae ScreenedSae(int threads) => Sae("gauss", true, threads);

    private static readonly Dictionary<int, double> BuildMs = [];

    /// <summary>Activations of one kind, cached.</summary>
    public static float[] Make(string kind, int tokens) => Workloads.Cached($"x{kind}{tokens}", () =>
    {
        var rng = new Random(4242 + tokens);
        var x = new float[tokens * Workloads.DIn];
        double sigma = Math.Sqrt(1.0 / 3);
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }

        if (kind == "outliers")
        {
            int[] dims = [17, 300, 1200, 2000];
            double[] mult = [100, -80, 60, 50];
            for (int t = 0; t < tokens; t++)
            {
                for (int k = 0; k < dims.Length; k++)
                {
                    x[(t * Workloads.DIn) + dims[k]] = (float)(mult[k] * sigma * (0.9 + (0.2 * rng.NextDouble())));
                }
            }
        }

        return x;
    });

    [GlobalSetup]
    public void Setup()
    {
        _x = Make(Activations, Tokens);
        _f = new float[Tokens * 16384];
        _dense = Sae(Activations, false, Threads);
        _screened = Sae(Activations, true, Threads);
        _ortGraph = Ort(Activations, "jumprelu", Threads);
        _ortMatMul = Ort(Activations, "matmul", Threads);
        _buffers = new OrtBuffers(_x, [Tokens, Workloads.DIn], _f, [Tokens, 16384]);
    }

    [GlobalCleanup]
    public void Cleanup() => Dispose();

    [Benchmark(Baseline = true, Description = "ORT MatMul only")]
    public void OrtMatMul() => _buffers.Run(_ortMatMul, _in, _outY);

    [Benchmark(Description = "ORT JumpReLU graph")]
    public void OrtGraph() => _buffers.Run(_ortGraph, _in, _outF);

    [Benchmark(Description = "GemmaScope fp32 dense")]
    public void Fp32() => _dense.Encode(_x, _f);

    [Benchmark(Description = "GemmaScope screened")]
    public void Screened() => _screened.Encode(_x, _f);

    [Benchmark(Description = "GemmaScope screened EncodeSparse")]
    public int ScreenedSparse() => _screened.EncodeSparse(_x).TokenCount;

    public void Dispose()
    {
        _buffers?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>CPU, ISA path, threads, memory, build time, and per-case L0 and candidates per token (same weights and inputs as the benchmark).</summary>
    public static string Report(int threads, int[] tokenCounts)
    {
        var sae = ScreenedSae(threads);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"CPU: {CpuModel()}; screen ISA: {(ScreenedEncodeKernel.UsesVnni ? "AVX-VNNI vpdpbusd (256-bit)" : "portable (no VNNI)")}, fp32 width {KernelSelector.Current}; threads {threads}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Screening memory: {sae.ScreeningBytes / 1048576.0:F0} MB (int8 W_enc {2304L * 16384 / 1048576.0:F0} MB + transposed fp32 W_enc {2304L * 16384 * 4 / 1048576.0:F0} MB + per-feature data); build at load {BuildMs.GetValueOrDefault(threads):F0} ms");
        sb.AppendLine();
        sb.AppendLine("| activations | tokens | L0 per token | int8 candidates per token | candidate rate | recomputed per token (after fp32 filter) | exact vs dense fp32 |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var kind in new[] { "gauss", "outliers" })
        {
            var dense = Sae(kind, false, threads);
            sae = Sae(kind, true, threads);
            foreach (int tokens in tokenCounts)
            {
                var x = Make(kind, tokens);
                var f = new float[tokens * 16384];
                var g = new float[tokens * 16384];
                sae.Encode(x, f);
                long cands = ScreenedEncodeKernel.LastCandidates, rec = ScreenedEncodeKernel.LastRecomputed;
                dense.Encode(x, g);
                long l0 = 0;
                bool same = true;
                for (int i = 0; i < f.Length; i++)
                {
                    l0 += f[i] != 0 ? 1 : 0;
                    same &= BitConverter.SingleToInt32Bits(f[i]) == BitConverter.SingleToInt32Bits(g[i]);
                }

                sb.AppendLine(CultureInfo.InvariantCulture, $"| {kind} | {tokens} | {(double)l0 / tokens:F1} | {(double)cands / tokens:F1} | {100.0 * cands / tokens / 16384:F2} % | {(double)rec / tokens:F1} | {(same ? "bitwise equal" : "DIFFERENT")} |");
            }
        }

        return sb.ToString();
    }

    /// <summary>Stopwatch loop (tuning; not the reported numbers): ORT MatMul, dense fp32, screened, and candidates.</summary>
    public static void Quick(int threads, int[] tokenCounts, string kind)
    {
        Console.WriteLine(Report(threads, tokenCounts));
        foreach (int tokens in tokenCounts)
        {
            var b = new Screened16k { Tokens = tokens, Threads = threads, Activations = kind };
            b.Setup();
            var line = new StringBuilder(FormattableString.Invariant($"{kind} tokens {tokens,5} threads {threads}:"));
            double ort = 0;
            foreach (var (name, act) in new (string, Action)[] { ("ortMatMul", b.OrtMatMul), ("fp32", b.Fp32), ("screened", b.Screened) })
            {
                double ms = QuickTimer.MeanNanoseconds(act) / 1e6;
                if (name == "screened")
                {
                    ScreenedEncodeKernel.DiagScreen = ScreenedEncodeKernel.DiagRecompute = 0;
                    act();
                    line.Append(FormattableString.Invariant($" [screen {ScreenedEncodeKernel.DiagScreen / 1e6:F2} ms, recompute {ScreenedEncodeKernel.DiagRecompute / 1e6:F2} ms thread-sum]"));
                }

                ort = name == "ortMatMul" ? ms : ort;
                line.Append(FormattableString.Invariant($"  {name} {ms,8:F3} ms ({ort / ms:F2}x)"));
            }

            Console.WriteLine(line);
        }
    }

    /// <summary>
    /// CPU-time comparison for a shared, oversubscribed machine, where wall-clock time mostly measures the scheduler:
    /// one thread for everyone (ORT's intra-op pool of 1 and our MaxDegreeOfParallelism 1 run on the calling thread),
    /// process CPU time per call, methods interleaved round-robin, median of the rounds. Still shares caches and memory
    /// bandwidth with the other jobs.
    /// </summary>
    public static string CpuTime(int[] tokenCounts, string[] kinds, int rounds)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Report(1, tokenCounts));
        sb.AppendLine("| activations | tokens | ORT MatMul (CPU ms/call) | ORT JumpReLU graph | GemmaScope fp32 dense | GemmaScope screened | screened vs ORT MatMul | screened vs ORT graph | screened vs our dense |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        var proc = Process.GetCurrentProcess();
        foreach (var kind in kinds)
        {
            foreach (int tokens in tokenCounts)
            {
                var b = new Screened16k { Tokens = tokens, Threads = 1, Activations = kind };
                b.Setup();
                (string Name, Action Act)[] ms = [("ort", b.OrtMatMul), ("graph", b.OrtGraph), ("dense", b.Fp32), ("screened", b.Screened)];
                var samples = new List<double>[ms.Length];
                int reps = Math.Max(1, 32 / tokens);
                for (int k = 0; k < ms.Length; k++)
                {
                    samples[k] = [];
                    ms[k].Act();
                }

                for (int r = 0; r < rounds; r++)
                {
                    for (int k = 0; k < ms.Length; k++)
                    {
                        proc.Refresh();
                        var c0 = proc.TotalProcessorTime;
                        for (int q = 0; q < reps; q++)
                        {
                            ms[k].Act();
                        }

                        proc.Refresh();
                        samples[k].Add((proc.TotalProcessorTime - c0).TotalMilliseconds / reps);
                    }
                }

                var med = samples.Select(l => l.Order().ElementAt(l.Count / 2)).ToArray();
                sb.AppendLine(CultureInfo.InvariantCulture, $"| {kind} | {tokens} | {med[0]:F2} | {med[1]:F2} | {med[2]:F2} | {med[3]:F2} | {med[0] / med[3]:F2}x | {med[1] / med[3]:F2}x | {med[2] / med[3]:F2}x |");
                Console.WriteLine(sb.ToString().Split('\n')[^2]);
                b.Dispose();
            }
        }

        return sb.ToString();
    }

    private static string CpuModel()
    {
        try
        {
            foreach (var l in File.ReadLines("/proc/cpuinfo"))
            {
                if (l.StartsWith("model name", StringComparison.Ordinal))
                {
                    return l[(l.IndexOf(':') + 1)..].Trim() + $" ({Environment.ProcessorCount} logical CPUs)";
                }
            }
        }
        catch (IOException)
        {
        }

        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }
}
