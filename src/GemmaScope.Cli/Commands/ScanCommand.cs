using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using GemmaScope.Cli.Output;
using GemmaScope.Onnx;
using GemmaScope.Scan;

namespace GemmaScope.Cli.Commands;

/// <summary>
/// <c>gemmascope scan</c>: streams a corpus through the model and SAEs, one shard or all of it, and (unsharded) writes the
/// Parquet tables and the dashboard; <c>gemmascope scan merge</c> folds the parts of a sharded scan.
/// </summary>
internal static class ScanCommand
{
    /// <summary>Test hook: after this batch the process reports and sleeps, so a test can kill it mid-shard.</summary>
    private const string StallVariable = "GEMMASCOPE_SCAN_STALL_AFTER_BATCH";

    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "A Hugging Face checkpoint folder (config.json + safetensors + tokenizer), or a hub repository id.", Required = true };
        var sae = new Option<string[]>("--sae") { Description = "An SAE: local file/folder or RELEASE/ID, optionally @HOOK (e.g. params.npz@blocks.2.hook_resid_post). Repeat for several; all run in one forward pass.", AllowMultipleArgumentsPerToken = false };
        var transcoder = new Option<string[]>("--transcoder") { Description = "A transcoder file/folder, optionally @INPUT_HOOK. Repeatable." };
        var neuronpedia = new Option<string[]>("--neuronpedia") { Description = "Neuronpedia model/sae id per SAE, in --sae then --transcoder order (for dashboard links)." };
        var corpus = new Option<string[]>("--corpus", "-c") { Description = "Corpus files or folders: .txt (a document per line), .jsonl (a text field per line), .parquet (a text column).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder: parts/ for shards; features.parquet, examples.parquet, dashboard/ when unsharded.", Required = true };
        var textField = new Option<string>("--text-field") { Description = "JSONL field / Parquet column with the text.", DefaultValueFactory = _ => "text" };
        var context = new Option<int>("--context") { Description = "Tokens per context, BOS included.", DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch") { Description = "Contexts per forward pass (part of the scan's identity: every shard must use the same).", DefaultValueFactory = _ => 32 };
        var topK = new Option<int>("--top-k") { Description = "Top examples per feature.", DefaultValueFactory = _ => 20 };
        var window = new Option<int>("--window") { Description = "Context tokens stored around each example.", DefaultValueFactory = _ => 32 };
        var every = new Option<int>("--checkpoint-every") { Description = "Checkpoint after this many batches.", DefaultValueFactory = _ => 64 };
        var shard = new Option<int?>("--shard") { Description = "This shard's index (else SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN, or JOB_COMPLETION_INDEX)." };
        var shards = new Option<int?>("--shards") { Description = "Shard count (else SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETIONS)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress lines." };
        var command = new Command("scan", "Scan a corpus: per feature density, histogram, top and quantile examples, logit lens; Parquet tables and an HTML dashboard. Shards on Slurm arrays or Kubernetes Indexed Jobs.")
        {
            model, sae, transcoder, neuronpedia, corpus, output, textField, context, batch, topK, window, every, shard, shards, quiet,
        };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => Guard(() => RunAsync(p.GetValue(model)!, p.GetValue(sae) ?? [], p.GetValue(transcoder) ?? [], p.GetValue(neuronpedia) ?? [],
            p.GetValue(corpus)!, p.GetValue(output)!, new ScanOptions
            {
                TextField = p.GetValue(textField)!,
                ContextLength = p.GetValue(context),
                BatchSize = p.GetValue(batch),
                TopK = p.GetValue(topK),
                ExampleWindow = p.GetValue(window),
                CheckpointEveryBatches = p.GetValue(every),
            },
            p.GetValue(shard), p.GetValue(shards), p.GetValue(quiet), ct))));

        var parts = new Option<string[]>("--parts") { Description = "Part folders, or folders holding them (e.g. OUT/parts).", Required = true };
        var mergeOut = new Option<string>("--out", "-o") { Description = "Output folder.", Required = true };
        var mergeModel = new Option<string?>("--model", "-m") { Description = "The model, for token strings and the logit lens (default: the one the parts record)." };
        var mergeSae = new Option<string[]>("--sae") { Description = "The SAEs, for the logit lens (default: those the parts record)." };
        var mergeTc = new Option<string[]>("--transcoder") { Description = "The transcoders, for the logit lens." };
        var merge = new Command("merge", "Fold finished parts (any set, any order) into the tables and the dashboard; bit-identical to one unsharded scan.")
        {
            parts, mergeOut, mergeModel, mergeSae, mergeTc,
        };
        merge.SetAction((p, ct) => ExitCodes.RunAsync(() => Guard(() => MergeAsync(p.GetValue(parts)!, p.GetValue(mergeOut)!, p.GetValue(mergeModel), p.GetValue(mergeSae) ?? [], p.GetValue(mergeTc) ?? [], ct))));
        command.Subcommands.Add(merge);
        return command;
    }

    // Merge and part errors are InvalidDataException, which the shared handler does not know: report them the same way.
    private static async Task<int> Guard(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            Console.Error.WriteLine($"gemmascope: error: {e.Message}");
            return ExitCodes.Failed;
        }
    }

    private static async Task<(List<ScanSae> Saes, List<IDisposable> Owned)> LoadSaesAsync(string[] saes, string[] transcoders, string[] neuronpedia, CancellationToken ct)
    {
        var list = new List<ScanSae>();
        var owned = new List<IDisposable>();
        int i = 0;
        foreach (var spec in saes)
        {
            var (path, hook) = Split(spec);
            var options = hook is null ? null : new SaeLoadOptions { Config = new SaeConfig { HookName = hook } };
            var s = await SaeSpec.LoadAsync(path, options, ct).ConfigureAwait(false);
            owned.Add(s);
            list.Add(ScanSae.From(s)); // a transcoder reads its input hook, its Config.HookName, as an SAE reads its own
            i++;
        }

        foreach (var spec in transcoders)
        {
            var (path, hook) = Split(spec);
            var options = hook is null ? null : new SaeLoadOptions { Config = new SaeConfig { HookName = hook } };
            var t = JumpReLUTranscoder.Load(path, options);
            owned.Add(t);
            list.Add(ScanSae.From(t));
        }

        if (list.Count == 0)
        {
            throw new UsageException("Give at least one --sae or --transcoder.");
        }

        if (neuronpedia.Length > list.Count)
        {
            throw new UsageException($"{neuronpedia.Length} --neuronpedia ids for {list.Count} SAEs.");
        }

        return (list, owned);
    }

    private static (string Path, string? Hook) Split(string spec)
    {
        int at = spec.LastIndexOf('@');
        return at > 0 && !File.Exists(spec) && !Directory.Exists(spec) ? (spec[..at], spec[(at + 1)..]) : (spec, null);
    }

    private static async Task<int> RunAsync(string modelSpec, string[] saeSpecs, string[] tcSpecs, string[] neuronpedia, string[] corpusPaths, string outDir, ScanOptions options,
        int? shardFlag, int? shardsFlag, bool quiet, CancellationToken ct)
    {
        ShardAssignment shard;
        try
        {
            shard = ShardAssignment.Resolve(shardFlag, shardsFlag);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        var wall = Stopwatch.StartNew();
        var (saes, owned) = await LoadSaesAsync(saeSpecs, tcSpecs, neuronpedia, ct).ConfigureAwait(false);
        try
        {
            saes = [.. saes.Select((s, i) => i < neuronpedia.Length ? WithNeuronpedia(s, neuronpedia[i]) : s)];
            var (gemma, _) = await ModelSpec.LoadAsync(modelSpec, null, ct).ConfigureAwait(false);
            using var disposeModel = gemma;
            var corpus = new TextCorpus(corpusPaths, options.TextField);
            long stallAt = long.TryParse(Environment.GetEnvironmentVariable(StallVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : -1;
            var scan = new FeatureScan(gemma, saes, corpus, options)
            {
                BatchCompleted = index =>
                {
                    if (index == stallAt)
                    {
                        Console.Error.WriteLine($"scan: stalled after batch {index} ({StallVariable})");
                        Console.Error.Flush();
                        Thread.Sleep(Timeout.Infinite);
                    }
                },
            };
            var progress = quiet ? null : new ProgressPrinter();
            Console.Error.WriteLine($"scan: shard {shard.Index} of {shard.Count} ({shard.Source}); {saes.Count} SAE(s): {string.Join(", ", saes.Select(x => x.Name))}");
            if (shard.Count == 1)
            {
                var result = scan.Run(outDir, progress, ct);
                Console.Out.WriteLine($"scanned {result}");
                PrintSaes(saes, result.DeadFeatures);
                Console.Out.WriteLine($"tables: {result.FeaturesTable}, {result.ExamplesTable}");
                Console.Out.WriteLine($"dashboard: {result.Dashboard}");
                return ExitCodes.Ok;
            }

            var part = Path.Combine(outDir, "parts", FeatureScan.PartName(shard.Index, shard.Count));
            var summary = scan.RunShard(part, shard.Index, shard.Count, progress, ct);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {summary.Shard} of {summary.Shards}: batches [{summary.StartBatch}, {summary.EndBatch}){(summary.ResumedFromBatch != summary.StartBatch ? $" resumed at {summary.ResumedFromBatch}" : "")}, {summary.TokensCounted:N0} tokens counted, {summary.Wall.TotalSeconds:F1} s; state {string.Join(", ", summary.StateBytes.Select(b => Units.Bytes(b)))} per SAE → {part}"));
            Console.Out.WriteLine($"merge with: gemmascope scan merge --parts {Path.Combine(outDir, "parts")} --out {outDir}");
            return ExitCodes.Ok;
        }
        finally
        {
            foreach (var o in owned)
            {
                o.Dispose();
            }
        }
    }

    private static ScanSae WithNeuronpedia(ScanSae s, string id) => s.WithNeuronpediaId(id);

    private static void PrintSaes(List<ScanSae> saes, int[] dead)
    {
        for (int i = 0; i < saes.Count && i < dead.Length; i++)
        {
            Console.Out.WriteLine($"  {saes[i].Name}: {saes[i].FeatureCount - dead[i]} live, {dead[i]} dead of {saes[i].FeatureCount}");
        }
    }

    private static async Task<int> MergeAsync(string[] parts, string outDir, string? modelSpec, string[] saeSpecs, string[] tcSpecs, CancellationToken ct)
    {
        var manifest = FeatureScan.ReadManifest(parts);
        modelSpec ??= manifest.Model;
        if (saeSpecs.Length == 0 && tcSpecs.Length == 0)
        {
            saeSpecs = [.. manifest.Saes.Select(s => s.Source + "@" + s.Hook)];
        }

        GemmaModel? gemma = null;
        List<ScanSae> saes = [];
        List<IDisposable> owned = [];
        try
        {
            try
            {
                (gemma, _) = await ModelSpec.LoadAsync(modelSpec, null, ct).ConfigureAwait(false);
                (saes, owned) = await LoadSaesAsync(saeSpecs, tcSpecs, [], ct).ConfigureAwait(false);
                saes = [.. saes.Select((s, i) => i < manifest.Saes.Length ? s.WithName(manifest.Saes[i].Name, manifest.Saes[i].NeuronpediaId) : s)];
            }
            catch (Exception e) when (e is IOException or ArgumentException or NotSupportedException)
            {
                Console.Error.WriteLine($"gemmascope: warning: merging without token strings and logit lens: {e.Message}");
            }

            var result = FeatureScan.Merge(parts, outDir, gemma, saes);
            Console.Out.WriteLine($"merged {result}");
            Console.Out.WriteLine($"dashboard: {result.Dashboard}");
            return ExitCodes.Ok;
        }
        finally
        {
            gemma?.Dispose();
            foreach (var o in owned)
            {
                o.Dispose();
            }
        }
    }

    private sealed class ProgressPrinter : IProgress<ScanProgress>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();
        private TimeSpan _last = TimeSpan.FromSeconds(-10);

        public void Report(ScanProgress value)
        {
            if (_since.Elapsed - _last < TimeSpan.FromSeconds(2) && value.BatchesDone != value.BatchesTotal)
            {
                return;
            }

            _last = _since.Elapsed;
            Console.Error.WriteLine($"scan: {value}");
        }
    }
}
