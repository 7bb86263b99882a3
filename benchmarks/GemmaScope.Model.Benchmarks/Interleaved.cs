using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// The same cases as <see cref="Gemma2Shaped"/>, timed with a Stopwatch in interleaved rounds: every round runs each
/// case once, in the same order, so baseline and model see the same load from other jobs; ratios are taken within a
/// round and the median over rounds is reported. Complements BenchmarkDotNet's per-case statistics on shared cores,
/// where the load can change several-fold between one case and the next. Holds the model and the baseline session
/// at the same time (about 3 × the fp32 weight bytes resident).
/// </summary>
internal static class Interleaved
{
    public static string Run(int rounds)
    {
        var b = new Gemma2Shaped();
        b.SetupStream();
        b.SetupModel();
        var cases = new List<(string Name, Action Act)>
        {
            ("stream", () => b.StreamRead1GiB()),
            ("prefill", () => b.Prefill128()),
            ("captureAll", () => b.Prefill128CaptureAll()),
            ("gen1", () => b.Generate1()),
            ("genN", () => b.GenerateN()),
        };
        cases.AddRange(b.StopCases());
        var gemms = new Gemma2Shaped();
        gemms.SetupGemms128();
        var gemv = new Gemma2Shaped();
        gemv.ShareGemms(gemms, 1);
        cases.Add(("gemms128", gemms.OrtGemms128));
        cases.Add(("gemms1", gemv.OrtGemms1));

        var times = cases.ToDictionary(c => c.Name, _ => new List<double>(), StringComparer.Ordinal);
        foreach (var (_, act) in cases)
        {
            act(); // warm-up
        }

        for (int r = 0; r < rounds; r++)
        {
            foreach (var (name, act) in cases)
            {
                var sw = Stopwatch.StartNew();
                act();
                times[name].Add(sw.Elapsed.TotalMilliseconds);
            }
        }

        gemv.ReleaseShared();
        gemms.CleanupGemms();
        b.CleanupModel();
        b.CleanupStream();

        long fp32 = CheckpointGenerator.Fp32Bytes(Bench.Layers);
        double streamBytes = 1L << 30;
        var ci = CultureInfo.InvariantCulture;
        double Med(IEnumerable<double> xs)
        {
            var s = xs.Order().ToArray();
            return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
        }

        double PerRound(Func<int, double> f) => Med(Enumerable.Range(0, rounds).Select(f));
        double T(string name, int r) => times[name][r];
        double Decode(int r) => (T("genN", r) - T("gen1", r)) / (Bench.DecodeSteps - 1);
        double Bound(int r) => fp32 / (streamBytes / (T("stream", r) * 1e-3)) * 1e3;

        var sb = new StringBuilder();
        sb.AppendLine(ci, $"Interleaved Stopwatch rounds: {rounds} (each round runs every case once; ratio = median over rounds of the ratio within a round).");
        sb.AppendLine();
        sb.AppendLine("| measurement | median | baseline in the same rounds | median ratio | goal |");
        sb.AppendLine("| --- | ---: | --- | ---: | --- |");
        sb.AppendLine(ci, $"| prefill 128 tokens, logits | {Med(times["prefill"]):F0} ms | same GEMMs alone in ORT: {Med(times["gemms128"]):F0} ms | {PerRound(r => T("prefill", r) / T("gemms128", r)):F2}× | ≤ 1.2× |");
        sb.AppendLine(ci, $"| decode 1 token, KV cache | {PerRound(Decode):F0} ms | fp32 weight bytes ÷ stream-read bandwidth ({PerRound(r => streamBytes / T("stream", r) / 1e6):F1} GB/s): {PerRound(Bound):F0} ms | {PerRound(r => Bound(r) / Decode(r)):F2} of the bound | ≥ 0.7 |");
        sb.AppendLine(ci, $"| decode 1 token, KV cache | {PerRound(Decode):F0} ms | same GEMMs alone in ORT at 1 token: {Med(times["gemms1"]):F0} ms | {PerRound(r => T("gemms1", r) / Decode(r)):F2}× (ORT GEMV time ÷ decode time) | |");
        sb.AppendLine(ci, $"| prefill 128 + capture all hooks of all layers | {Med(times["captureAll"]):F0} ms | prefill 128, no capture: {Med(times["prefill"]):F0} ms | {(PerRound(r => T("captureAll", r) / T("prefill", r)) - 1) * 100:+0.0;-0.0}% | ≤ +5% |");
        if (times.ContainsKey("stop"))
        {
            sb.AppendLine(ci, $"| stop at the middle layer, no logits | {Med(times["stop"]):F0} ms | full graph, same capture, logits: {Med(times["full"]):F0} ms | {PerRound(r => T("full", r) / T("stop", r)):F2}× speedup | |");
        }

        sb.AppendLine();
        sb.AppendLine("Per-case times (ms), in round order:");
        sb.AppendLine();
        foreach (var (name, _) in cases)
        {
            sb.AppendLine(ci, $"- {name}: {string.Join(", ", times[name].Select(t => t.ToString("F0", ci)))}");
        }

        return sb.ToString();
    }
}
