using System.Diagnostics;
using System.Globalization;
using System.Text;
using GemmaScope.Engine;
using GemmaScope.Onnx;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// The native engine (GemmaScope.Engine) on the generated Gemma 2 2B-shaped checkpoints, timed in interleaved rounds
/// (Stopwatch; every case once per round, the median over rounds reported), with an RSS watchdog:
/// prefill 16/128/1024 tokens (last-row logits), decode (1 token with the KV cache after a 16-token prompt), capture
/// of every hook point of every layer vs none (prefill 128), the stream-read bandwidth and the decode bound
/// (weight bytes read per token ÷ bandwidth), and load → first token plus peak memory in a fresh child process.
/// <c>engine-vs-ort</c> times the ONNX Runtime engine (GemmaModel.FromPretrained, ORT) beside the native one on the
/// same files and threads: use it on a cut (GEMMASCOPE_BENCH_LAYERS=8), where ORT's ~2× fp32 weights fit.
/// </summary>
internal static class EngineBench
{
    // GEMMASCOPE_BENCH_PREFILL (comma-separated) overrides, e.g. "16" for a smoke run
    private static readonly int[] PrefillLengths = Environment.GetEnvironmentVariable("GEMMASCOPE_BENCH_PREFILL") is { Length: > 0 } p
        ? [.. p.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture))]
        : [16, 128, 1024];

    public static string Run(int rounds, bool withOrt)
    {
        using var watchdog = new RssWatchdog();
        var sb = new StringBuilder();
        sb.AppendLine(FormattableString.Invariant($"Native engine, {Bench.Layers} layers, {Bench.Threads} threads, {rounds} interleaved rounds (median ms); RSS watchdog at {watchdog.LimitBytes / 1e9:F1} GB."));
        sb.AppendLine();
        foreach (bool bf16 in new[] { true, false })
        {
            string folder = Bench.Checkpoint(bf16);
            sb.AppendLine(Case(folder, bf16, rounds, withOrt));
        }

        sb.AppendLine("Load → first token (fresh child process each, GemmaEngine.Open + Forward([2]) with last-row logits):");
        sb.AppendLine();
        sb.AppendLine("| checkpoint | open ms | + first token ms | VmHWM GB | ÷ checkpoint bytes | RssAnon MB | RssFile GB |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (bool bf16 in new[] { true, false })
        {
            for (int i = 0; i < 2; i++)
            {
                string folder = Bench.Checkpoint(bf16);
                var r = LoadProbe.Spawn("engineprobe", folder, binding: null, out string? error);
                long bytes = CheckpointBytes(folder);
                sb.AppendLine(r is null
                    ? $"| {(bf16 ? "bf16" : "fp32")} | failed: {error} | | | | | |"
                    : FormattableString.Invariant($"| {(bf16 ? "bf16" : "fp32")} | {r.LoadMs:F0} | {r.FirstRunMs - r.LoadMs:F0} | {r.VmHwmKb / 1048576.0:F2} | {r.VmHwmKb * 1024.0 / bytes:F2} | {r.RssAnonKb / 1024.0:F0} | {r.RssFileKb / 1048576.0:F2} |"));
            }
        }

        return sb.ToString();
    }

    private static string Case(string folder, bool bf16, int rounds, bool withOrt)
    {
        var times = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        void Add(string name, double ms)
        {
            if (!times.TryGetValue(name, out var list))
            {
                times[name] = list = [];
            }

            list.Add(ms);
        }

        long weightBytes = CheckpointBytes(folder);

        // Bytes a decode step reads: every layer's matrices and the LM head (= the embedding), i.e. the whole checkpoint.
        using var probe = new StreamRead(1L << 30, Bench.Threads);
        using var engine = GemmaEngine.Open(folder, new GemmaEngineOptions { Threads = Bench.Threads });
        using GemmaModel? ort = withOrt ? ModelHost.Open(folder) : null;
        var capture = new CaptureAll(engine);
        for (int round = -1; round < rounds; round++)
        {
            // round −1 warms up (page cache, JIT, scratch); not recorded
            foreach (int n in PrefillLengths)
            {
                var ids = Bench.Ids(n);
                double ms = Time(() => engine.Forward(new ForwardRequest { Sequences = [ids], Logits = LogitsMode.LastRow }));
                if (round >= 0)
                {
                    Add($"prefill {n}, native", ms);
                }

                if (ort is not null)
                {
                    ms = Time(() => ort.Run(ids));
                    if (round >= 0)
                    {
                        Add($"prefill {n}, ORT (logits of every row)", ms);
                        Add($"prefill {n}, native, logits of every row", Time(() => engine.Forward(new ForwardRequest { Sequences = [ids], Logits = LogitsMode.AllRows })));
                    }
                }
            }

            var prompt = Bench.Ids(Bench.DecodePrompt);
            using (var cache = engine.CreateCache())
            {
                var r = engine.Forward(new ForwardRequest { Sequences = [prompt], Caches = [cache] });
                var steps = new List<double>();
                for (int s = 0; s < 8; s++)
                {
                    int next = ArgMax(r.LastLogits(0));
                    var sw = Stopwatch.StartNew();
                    r = engine.Forward(new ForwardRequest { Sequences = [[next]], Caches = [cache] });
                    steps.Add(sw.Elapsed.TotalMilliseconds);
                }

                if (round >= 0)
                {
                    Add("decode 1 token (KV cache), native", Median(steps));
                }
            }

            var ids128 = Bench.Ids(128);
            double plain = Time(() => engine.Forward(new ForwardRequest { Sequences = [ids128], Logits = LogitsMode.LastRow }));
            double captured = Time(() => engine.Forward(new ForwardRequest { Sequences = [ids128], Logits = LogitsMode.LastRow, Hooks = capture }));
            double bw = probe.Run();
            if (round >= 0)
            {
                Add("prefill 128, no capture", plain);
                Add("prefill 128, capture every hook point", captured);
                Add("stream read GB/s", bw / 1e9);
            }
        }

        var sb = new StringBuilder();
        sb.AppendLine(FormattableString.Invariant($"### {(bf16 ? "bf16" : "fp32")} checkpoint, {weightBytes / 1e9:F2} GB ({folder})"));
        sb.AppendLine();
        sb.AppendLine("| case | median | min | max |");
        sb.AppendLine("| --- | ---: | ---: | ---: |");
        foreach (var (name, list) in times)
        {
            sb.AppendLine(FormattableString.Invariant($"| {name} | {Median(list):F1} | {list.Min():F1} | {list.Max():F1} |"));
        }

        double decode = Median(times["decode 1 token (KV cache), native"]), gbs = Median(times["stream read GB/s"]);
        double bound = weightBytes / (gbs * 1e9) * 1e3;
        sb.AppendLine();
        sb.AppendLine(FormattableString.Invariant($"Decode bound (checkpoint bytes ÷ stream-read bandwidth): {bound:F1} ms; bound ÷ decode = {bound / decode:F2}."));
        sb.AppendLine(FormattableString.Invariant($"Capture overhead (median of per-round ratios): {(MedianRatio(times["prefill 128, capture every hook point"], times["prefill 128, no capture"]) - 1) * 100:F1}%."));
        if (withOrt)
        {
            foreach (int n in PrefillLengths)
            {
                sb.AppendLine(FormattableString.Invariant($"Prefill {n}: ORT ÷ native (every row's logits, like ORT) = {MedianRatio(times[$"prefill {n}, ORT (logits of every row)"], times[$"prefill {n}, native, logits of every row"]):F2}×; ORT ÷ native last-row = {MedianRatio(times[$"prefill {n}, ORT (logits of every row)"], times[$"prefill {n}, native"]):F2}×."));
            }
        }

        return sb.ToString();
    }

    private static long CheckpointBytes(string folder) =>
        Directory.EnumerateFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length);

    private static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] > x[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }

    private static double MedianRatio(List<double> a, List<double> b) => Median([.. a.Zip(b, (x, y) => x / y)]);

    /// <summary>Captures every hook point of every layer into buffers kept across calls (what run_with_cache does).</summary>
    private sealed class CaptureAll(GemmaEngine engine) : IForwardHooks
    {
        private readonly Dictionary<HookPoint, float[]> _kept = [];

        public bool Wants(HookPoint point) => point.IsFinal || point.Layer < engine.Architecture.Layers;

        public void OnHook(HookPoint point, in HookSite site, Span<float> rows)
        {
            if (!_kept.TryGetValue(point, out var buffer) || buffer.Length < rows.Length)
            {
                _kept[point] = buffer = new float[rows.Length];
            }

            rows.CopyTo(buffer);
        }
    }

    /// <summary>Child process: open, first token, memory peaks. Prints one RESULT line.</summary>
    public static void ProbeChild(string folder)
    {
        using var watchdog = new RssWatchdog();
        var sw = Stopwatch.StartNew();
        using var engine = GemmaEngine.Open(folder, new GemmaEngineOptions { Threads = Bench.Threads });
        double load = sw.Elapsed.TotalMilliseconds;
        _ = engine.Forward(new ForwardRequest { Sequences = [[2]] }).LastLogits(0)[0];
        double first = sw.Elapsed.TotalMilliseconds;
        Console.WriteLine(FormattableString.Invariant($"RESULT {load:F0} {first:F0} {RssWatchdog.StatusKb("VmHWM")} {RssWatchdog.StatusKb("RssAnon")} {RssWatchdog.StatusKb("RssFile")}"));
    }
}
