using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using GemmaScope;
using GemmaScope.Benchmarks;

// Modes:
//   quick [dSae] [threads]   Stopwatch loop over the encode cases (for tuning; not the reported numbers)
//   matmul-quick [in×out,...] [tokens,...] [rounds]   Stopwatch A/B of MatMul vs ORT (tuning; not the reported numbers)
//   loadprobe <path> <mode>  child process: load once, print ms and peak working set
//   (anything else)          BenchmarkDotNet in process (short job), then a markdown table to benchmark-table.md
if (args.Length > 0 && args[0] == "quick")
{
    if (Environment.GetEnvironmentVariable("PF_DIST") is { } pd)
    {
        GemmaScope.Kernels.JumpReLUGemvKernel.PrefetchDistanceRows = int.Parse(pd, CultureInfo.InvariantCulture);
    }

    if (Environment.GetEnvironmentVariable("PF_FROM") is { } pf)
    {
        GemmaScope.Kernels.JumpReLUGemvKernel.PrefetchFromTokens = int.Parse(pf, CultureInfo.InvariantCulture);
    }

    if (Environment.GetEnvironmentVariable("GEMV_MAX") is { } gm)
    {
        GemmaScope.Kernels.JumpReLUGemvKernel.MaxTokens = int.Parse(gm, CultureInfo.InvariantCulture);
    }

    Quick(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 16384, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2,
        args.Length > 3 ? [.. args[3].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture))] : [1, 4, 5, 16, 128, 1024]);
    return;
}

if (args.Length > 0 && args[0] == "screencpu")
{
    var text = Screened16k.CpuTime(args.Length > 1 ? [.. args[1].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture))] : [1, 16, 128, 1024],
        args.Length > 2 ? args[2].Split(',') : ["gauss", "outliers"], args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3);
    Console.WriteLine(text);
    File.WriteAllText("screening-cputime.md", text);
    return;
}

if (args.Length > 0 && args[0] == "screenquick")
{
    Screened16k.Quick(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2,
        args.Length > 2 ? [.. args[2].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture))] : [1, 16, 128, 1024], args.Length > 3 ? args[3] : "gauss");
    return;
}

if (args.Length > 0 && args[0] == "interleaved")
{
    if (Environment.GetEnvironmentVariable("PACKED_FROM") is { } pf1)
    {
        GemmaScope.Kernels.JumpReLUEncodeKernel.PackedFromTokens = int.Parse(pf1, CultureInfo.InvariantCulture);
    }

    Interleaved(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 16384, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2,
        args.Length > 3 ? [.. args[3].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture))] : [1, 4, 8, 16, 32, 64, 128, 256, 1024],
        args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 7);
    return;
}

if (args.Length > 0 && args[0] == "matmul-quick")
{
    GemmaScope.Kernels.DotGemmKernel.Gemv8 = Environment.GetEnvironmentVariable("GEMM_GEMV8") != "0";
    GemmaScope.Kernels.MatMul.KcOverride = int.Parse(Environment.GetEnvironmentVariable("GEMM_KC") ?? "0", CultureInfo.InvariantCulture);
    GemmaScope.Kernels.MatMul.NbOverride = int.Parse(Environment.GetEnvironmentVariable("GEMM_NB") ?? "0", CultureInfo.InvariantCulture);
    MatMulBenchmarks.Quick(args.Length > 1 ? args[1].Split(',') : ["2304x9216", "9216x2304", "2304x2048"],
        args.Length > 2 ? [.. args[2].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture))] : [1, 16, 128, 1024],
        args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 5);
    return;
}

if (args.Length > 0 && args[0] == "checks")
{
    Console.WriteLine(Checks.Run());
    return;
}

if (args.Length > 0 && args[0] == "loadprobe")
{
    var sw = Stopwatch.StartNew();
    using var sae = JumpReLUSae.Load(args[1], new SaeLoadOptions { Validation = Enum.Parse<SaeValidation>(args[2]) });
    var x = new float[sae.InputSize];
    x.AsSpan().Fill(0.01f);
    _ = sae.EncodeSparse(x);
    sw.Stop();
    Console.WriteLine(FormattableString.Invariant($"{sw.Elapsed.TotalMilliseconds:F1} {Process.GetCurrentProcess().PeakWorkingSet64}"));
    return;
}

var job = Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(2).WithIterationCount(5).WithLaunchCount(1);
var config = DefaultConfig.Instance.AddJob(job.AsDefault()).WithOptions(ConfigOptions.DisableOptimizationsValidator);
Summary[] summaries = [.. BenchmarkSwitcher.FromAssembly(typeof(Workloads).Assembly).Run(args, config)];
var table = new StringBuilder();
foreach (var summary in summaries)
{
    var reports = summary.Reports.Where(r => r.ResultStatistics is not null).ToList();
    if (reports.Count == 0)
    {
        continue;
    }

    string type = reports[0].BenchmarkCase.Descriptor.Type.Name;
    if (type == nameof(MatMulBenchmarks))
    {
        MatMulBenchmarks.Table(table, reports, CpuModel());
    }
    else if (type.StartsWith("Encode", StringComparison.Ordinal))
    {
        table.AppendLine(CultureInfo.InvariantCulture, $"CPU: {CpuModel()}; kernel width {GemmaScope.Kernels.KernelSelector.Current}; {GemmaScope.Kernels.CacheSizes.Describe()}; threads as listed (ours = ORT's intra-op)");
        table.AppendLine();
        table.AppendLine("| d_in × d_sae | tokens | threads | implementation | mean | GFLOP/s | vs ORT MatMul | vs ORT graph |");
        table.AppendLine("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (var g in reports.GroupBy(r => (P(r, "DSae"), P(r, "Tokens"), P(r, "Threads"))))
        {
            double graph = g.FirstOrDefault(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == "OrtGraph")?.ResultStatistics!.Mean ?? double.NaN;
            double matmul = g.First(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == "OrtMatMul").ResultStatistics!.Mean;
            var (dSae, tokens, threads) = g.Key;
            foreach (var r in g)
            {
                double ns = r.ResultStatistics!.Mean;
                int dIn = Workloads.DInFor(dSae);
                double gflops = 2.0 * tokens * dIn * dSae / ns;
                string vsGraph = double.IsNaN(graph) ? "–" : $"{graph / ns:F2}x";
                table.AppendLine(CultureInfo.InvariantCulture, $"| {dIn} × {dSae} | {tokens} | {threads} | {r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo} | {Time(ns)} | {gflops:F1} | {matmul / ns:F2}x | {vsGraph} |");
            }
        }

        table.AppendLine();
        table.AppendLine("Kernel paths (d_sae, tokens, threads):");
        table.AppendLine();
        foreach (var (k, v) in Workloads.Paths)
        {
            table.AppendLine(CultureInfo.InvariantCulture, $"- {k}: {v}");
        }
    }
    else
    {
        table.AppendLine(CultureInfo.InvariantCulture, $"| {type} | parameters | mean | vs baseline |");
        table.AppendLine("| --- | --- | ---: | ---: |");
        foreach (var g in reports.GroupBy(r => r.BenchmarkCase.Parameters.PrintInfo))
        {
            var baseline = g.FirstOrDefault(r => r.BenchmarkCase.Descriptor.Baseline) ?? g.First();
            foreach (var r in g)
            {
                double ns = r.ResultStatistics!.Mean;
                table.AppendLine(CultureInfo.InvariantCulture, $"| {r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo} | {g.Key} | {Time(ns)} | {baseline.ResultStatistics!.Mean / ns:F1}x |");
            }
        }

        if (type == nameof(LoadNpz))
        {
            table.AppendLine();
            table.AppendLine("| load (child process, first call, includes 1-token EncodeSparse) | ms | peak working set |");
            table.AppendLine("| --- | ---: | ---: |");
            foreach (var mode in new[] { "StructureOnly", "Full" })
            {
                var psi = new ProcessStartInfo(Environment.ProcessPath!, $"loadprobe {LoadNpz.NpzPath} {mode}") { RedirectStandardOutput = true };
                if (!Environment.ProcessPath!.EndsWith("GemmaScope.Benchmarks", StringComparison.Ordinal))
                {
                    psi = new ProcessStartInfo(Environment.ProcessPath!, $"{typeof(Workloads).Assembly.Location} loadprobe {LoadNpz.NpzPath} {mode}") { RedirectStandardOutput = true };
                }

                using var p = Process.Start(psi)!;
                var parts = p.StandardOutput.ReadToEnd().Trim().Split(' ');
                p.WaitForExit();
                table.AppendLine(CultureInfo.InvariantCulture, $"| {mode} | {parts[0]} | {long.Parse(parts[1], CultureInfo.InvariantCulture) / 1048576.0:F0} MB |");
            }
        }
    }

    table.AppendLine();
}

if (summaries.Any(s => s.Reports.Any(r => r.BenchmarkCase.Descriptor.Type == typeof(Encode16k))))
{
    table.AppendLine("Checks (same process, same weights):");
    table.AppendLine();
    table.Append(Checks.Run());
}

if (summaries.Any(s => s.Reports.Any(r => r.BenchmarkCase.Descriptor.Type == typeof(Screened16k))))
{
    table.AppendLine("Screening (same process, same weights and activations):");
    table.AppendLine();
    table.Append(Screened16k.Report(2, [1, 16, 128, 1024]));
}

Console.WriteLine(table);
File.WriteAllText(Path.Combine(Directory.GetCurrentDirectory(), "benchmark-table.md"), table.ToString());

static string CpuModel()
{
    try
    {
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal))
            {
                return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim() + $", {Environment.ProcessorCount} logical CPUs";
            }
        }
    }
    catch (IOException)
    {
    }

    return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
}

static int P(BenchmarkReport r, string name) => Convert.ToInt32(r.BenchmarkCase.Parameters[name], CultureInfo.InvariantCulture);

static string Time(double ns) => ns >= 1e6 ? $"{ns / 1e6:F2} ms" : $"{ns / 1e3:F1} us";

// Rounds of ORT MatMul, ORT graph (16k), fp32, bf16, one after another, so load from other jobs on a shared machine falls on
// all of them alike; per implementation the median and the minimum time per call over the rounds, and their ratios.
static void Interleaved(int dSae, int threads, int[] tokenCounts, int rounds)
{
    int dIn = Workloads.DInFor(dSae);
    Console.WriteLine(FormattableString.Invariant($"CPU: {CpuModel()}; kernel width {GemmaScope.Kernels.KernelSelector.Current}; {GemmaScope.Kernels.CacheSizes.Describe()}; {threads} threads (ours and ORT intra-op); {rounds} interleaved rounds"));
    Console.WriteLine();
    Console.WriteLine("| d_in × d_sae | tokens | threads | ORT MatMul median | fp32 / MatMul (median, min) | bf16 / MatMul (median, min) | ORT graph vs MatMul (median) | paths |");
    Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    foreach (int tokens in tokenCounts)
    {
        EncodeBenchmarksBase b = dSae >= 131072
            ? new Encode131k { Tokens = tokens, Threads = threads, DSae = dSae }
            : new Encode16k { Tokens = tokens, Threads = threads, DSae = dSae };
        b.Setup();
        var cases = new List<(string Name, Action Act)> { ("matmul", b.OrtMatMul), ("fp32", b.Fp32), ("bf16", b.Bf16) };
        if (b is Encode16k g)
        {
            cases.Add(("graph", g.OrtGraph));
        }

        if (Environment.GetEnvironmentVariable("AB_PACKED1") == "1")
        {
            // A/B for one token: the packed panels instead of the in-place GEMV, same process, same rounds.
            int keep = GemmaScope.Kernels.JumpReLUEncodeKernel.PackedFromTokens;
            void With1(Action a)
            {
                GemmaScope.Kernels.JumpReLUEncodeKernel.PackedFromTokens = 1;
                a();
                GemmaScope.Kernels.JumpReLUEncodeKernel.PackedFromTokens = keep;
            }

            cases.Add(("fp32 packed", () => With1(b.Fp32)));
            cases.Add(("bf16 packed", () => With1(b.Bf16)));
        }

        // Calls per sample: about 30 ms of ORT work, at least one.
        b.OrtMatMul();
        var sw0 = Stopwatch.StartNew();
        b.OrtMatMul();
        int reps = Math.Max(1, (int)(30.0 / Math.Max(0.01, sw0.Elapsed.TotalMilliseconds)));
        var times = cases.ToDictionary(c => c.Name, _ => new List<double>());
        foreach (var c in cases)
        {
            c.Act();
        }

        for (int r = 0; r < rounds; r++)
        {
            foreach (var c in cases)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < reps; i++)
                {
                    c.Act();
                }

                times[c.Name].Add(sw.Elapsed.TotalMilliseconds / reps);
            }
        }

        double Med(string n)
        {
            var l = times[n].Order().ToList();
            return l[l.Count / 2];
        }

        double Min(string n) => times[n].Min();
        string graph = times.ContainsKey("graph") ? FormattableString.Invariant($"{Med("matmul") / Med("graph"):F2}x") : "–";
        Workloads.Paths.TryGetValue($"{dSae} {tokens,5} {threads}", out var path);
        if (times.ContainsKey("fp32 packed"))
        {
            path += FormattableString.Invariant($"; A/B packed at this size: fp32 {Med("matmul") / Med("fp32 packed"):F2}x, {Min("matmul") / Min("fp32 packed"):F2}x; bf16 {Med("matmul") / Med("bf16 packed"):F2}x, {Min("matmul") / Min("bf16 packed"):F2}x");
        }

        Console.WriteLine(FormattableString.Invariant(
            $"| {dIn} × {dSae} | {tokens} | {threads} | {Med("matmul"):F2} ms | {Med("matmul") / Med("fp32"):F2}x, {Min("matmul") / Min("fp32"):F2}x | {Med("matmul") / Med("bf16"):F2}x, {Min("matmul") / Min("bf16"):F2}x | {graph} | {path} |"));
    }
}

static void Quick(int dSae, int threads, int[] tokenCounts)
{
    foreach (int tokens in tokenCounts)
    {
        EncodeBenchmarksBase b = dSae >= 131072
            ? new Encode131k { Tokens = tokens, Threads = threads, DSae = dSae }
            : new Encode16k { Tokens = tokens, Threads = threads, DSae = dSae };
        b.Setup();
        var line = new StringBuilder(FormattableString.Invariant($"tokens {tokens,5} threads {threads}:"));
        var cases = new List<(string, Action)> { ("ortMatMul", b.OrtMatMul), ("fp32", b.Fp32), ("bf16", b.Bf16) };
        if (b is Encode16k g)
        {
            cases.Insert(0, ("ortGraph", g.OrtGraph));
        }

        foreach (var (name, act) in cases)
        {
            double ns = QuickTimer.MeanNanoseconds(act);
            line.Append(FormattableString.Invariant($"  {name} {2.0 * tokens * Workloads.DInFor(dSae) * dSae / ns,6:F1} GF/s"));
        }

        Console.WriteLine(line);
    }
}
