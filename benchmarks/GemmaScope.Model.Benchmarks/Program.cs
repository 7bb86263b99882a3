using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using GemmaScope.Model.Benchmarks;
using GemmaScope.Onnx;

// Modes:
//   generate                write the fp32 and bf16 checkpoints (if missing) and exit
//   checks                  sanity checks alone (baseline GEMMs vs float64, finite activations, stop = full, KV = no KV)
//   loadprobe <folder>      child process: FromPretrained + a first 1-token run; prints times and /proc/self/status peaks
//   engine [rounds]         the native engine (GemmaScope.Engine): prefill 16/128/1024, decode, capture-all, load probes,
//                           bf16 and fp32 checkpoints, RSS watchdog → engine-benchmark.md
//   engine-vs-ort [rounds]  the same plus the ORT engine beside it on the same files (use GEMMASCOPE_BENCH_LAYERS=8)
//   engineprobe <folder>    child process: GemmaEngine.Open + a first token; prints times and memory peaks
//   (anything else)         generate if needed, BenchmarkDotNet in process, load probes in child processes,
//                           then the table as ratios to the same-run baselines → model-benchmark-table.md
if (args.Length > 0 && args[0] == "loadprobe")
{
    LoadProbe.Child(args[1]);
    return;
}

if (args.Length > 0 && args[0] == "engineprobe")
{
    EngineBench.ProbeChild(args[1]);
    return;
}

Generate();
if (args.Length > 0 && args[0] is "engine" or "engine-vs-ort")
{
    string report = MachineInfo.Describe(Bench.Threads) + Environment.NewLine + Environment.NewLine
        + EngineBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5, withOrt: args[0] == "engine-vs-ort");
    Console.WriteLine(report);
    File.WriteAllText(Path.Combine(Directory.GetCurrentDirectory(), $"{args[0]}-benchmark.md"), report);
    return;
}

if (args.Length > 0 && args[0] == "generate")
{
    return;
}

string machine = MachineInfo.Describe(Bench.Threads);
Console.WriteLine(machine);
if (args.Length > 0 && args[0] == "checks")
{
    Console.WriteLine(Checks.Run());
    return;
}

if (args.Length > 0 && args[0] == "interleaved")
{
    string text = machine + Environment.NewLine + Environment.NewLine + Interleaved.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5);
    Console.WriteLine(text);
    File.WriteAllText(Path.Combine(Directory.GetCurrentDirectory(), "model-benchmark-interleaved.md"), text);
    return;
}

var started = DateTime.UtcNow;
var job = Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(1).WithIterationCount(5).WithLaunchCount(1)
    .WithInvocationCount(1).WithUnrollFactor(1);
var config = DefaultConfig.Instance.AddJob(job.AsDefault()).WithOptions(ConfigOptions.DisableOptimizationsValidator);
var summary = BenchmarkRunner.Run<Gemma2Shaped>(config, args);
var probes = new List<(string Name, LoadProbe.Result? R, string? Error)>();
foreach (var (bf16, binding) in new[] { (false, (string?)null), (true, null), (false, "ExternalData") })
{
    for (int i = 0; i < 2; i++)
    {
        probes.Add(($"{(bf16 ? "bf16" : "fp32")}{(binding is null ? "" : $", {binding} binding")}", LoadProbe.Spawn(Bench.Checkpoint(bf16), binding, out string? err), err));
    }
}

string table = Report.Table(summary, probes, machine, started, DateTime.UtcNow) + Environment.NewLine + "Checks (same process, after the timings):" +
    Environment.NewLine + Environment.NewLine + Checks.Run();
Console.WriteLine(table);
File.WriteAllText(Path.Combine(Directory.GetCurrentDirectory(), "model-benchmark-table.md"), table);

static void Generate()
{
    foreach (bool bf16 in new[] { false, true })
    {
        var sw = Stopwatch.StartNew();
        string folder = Bench.Checkpoint(bf16);
        bool existed = File.Exists(Path.Combine(folder, "model.safetensors.index.json"));
        CheckpointGenerator.EnsureWritten(folder, Bench.Layers, bf16);
        if (!existed)
        {
            Console.WriteLine(FormattableString.Invariant($"wrote {folder} in {sw.Elapsed.TotalSeconds:F1} s"));
        }
    }
}
