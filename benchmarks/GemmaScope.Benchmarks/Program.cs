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
    if (type.StartsWith("Encode", StringComparison.Ordinal))
    {
        table.AppendLine("| d_sae | tokens | threads | implementation | mean | GFLOP/s | tokens/s | vs ORT graph | vs ORT MatMul |");
        table.AppendLine("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var g in reports.GroupBy(r => (P(r, "DSae"), P(r, "Tokens"), P(r, "Threads"))))
        {
            double graph = g.First(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == "OrtGraph").ResultStatistics!.Mean;
            double matmul = g.First(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == "OrtMatMul").ResultStatistics!.Mean;
            var (dSae, tokens, threads) = g.Key;
            foreach (var r in g)
            {
                double ns = r.ResultStatistics!.Mean;
                double gflops = 2.0 * tokens * Workloads.DIn * dSae / ns;
                table.AppendLine(CultureInfo.InvariantCulture, $"| {dSae} | {tokens} | {threads} | {r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo} | {Time(ns)} | {gflops:F1} | {tokens / (ns * 1e-9):N0} | {graph / ns:F2}x | {matmul / ns:F2}x |");
            }
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

static int P(BenchmarkReport r, string name) => Convert.ToInt32(r.BenchmarkCase.Parameters[name], CultureInfo.InvariantCulture);

static string Time(double ns) => ns >= 1e6 ? $"{ns / 1e6:F2} ms" : $"{ns / 1e3:F1} us";

static void Quick(int dSae, int threads, int[] tokenCounts)
{
    foreach (int tokens in tokenCounts)
    {
        var b = new Encode16k { Tokens = tokens, Threads = threads, DSae = dSae };
        b.Setup();
        var line = new StringBuilder(FormattableString.Invariant($"tokens {tokens,5} threads {threads}:"));
        foreach (var (name, act) in new (string, Action)[] { ("ortGraph", b.OrtGraph), ("ortMatMul", b.OrtMatMul), ("fp32", b.Fp32), ("bf16", b.Bf16) })
        {
            act();
            int n = 0;
            var sw = Stopwatch.StartNew();
            while (sw.ElapsedMilliseconds < 400 || n < 3)
            {
                act();
                n++;
            }

            double ns = sw.Elapsed.TotalNanoseconds / n;
            line.Append(FormattableString.Invariant($"  {name} {2.0 * tokens * Workloads.DIn * dSae / ns,6:F1} GF/s"));
        }

        Console.WriteLine(line);
    }
}
