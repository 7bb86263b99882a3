using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using GemmaScope.Scan.Benchmarks;

// dotnet run -c Release -- [--smoke]   (--smoke: one dry iteration each, to check it runs; the numbers mean nothing)
var smoke = args.Contains("--smoke");
var job = (smoke ? Job.Dry : Job.ShortRun).WithToolchain(InProcessEmitToolchain.Instance);
var config = ManualConfig.Create(DefaultConfig.Instance).AddJob(job).WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkRunner.Run<ScanBenchmarks>(config);
