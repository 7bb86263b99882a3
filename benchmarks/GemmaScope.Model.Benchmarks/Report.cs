using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;

namespace GemmaScope.Model.Benchmarks;

/// <summary>The results as ratios to the baselines measured in the same run, with the goals of issue 11.</summary>
internal static class Report
{
    public static string Table(Summary summary, List<(string Name, LoadProbe.Result? R, string? Error)> probes, string machine, DateTime started, DateTime ended)
    {
        var stats = summary.Reports.Where(r => r.ResultStatistics is not null)
            .ToDictionary(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name, r => r.ResultStatistics!, StringComparer.Ordinal);
        int layers = Bench.Layers;
        long fp32 = CheckpointGenerator.Fp32Bytes(layers);
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine(ci, $"Gemma 2 2B-shaped checkpoint, random weights, {layers} layers (d_model 2304, d_ff 9216, 8×256 q heads, 4 KV heads, vocab 256000), fp32 weights {fp32 / 1e9:F2} GB.");
        sb.AppendLine(ci, $"Run {started:yyyy-MM-dd HH:mm}–{ended:HH:mm} UTC. {machine}");
        sb.AppendLine();
        sb.AppendLine("Ratios from the means of the same BenchmarkDotNet run; in brackets from the fastest iterations (less sensitive to other jobs on shared cores).");
        sb.AppendLine();
        sb.AppendLine("| measurement | mean | baseline (same run) | ratio [from minima] | goal | met (mean) |");
        sb.AppendLine("| --- | ---: | --- | ---: | --- | --- |");
        double? M(string name, bool min = false) => stats.TryGetValue(name, out var s) ? (min ? s.Min : s.Mean) : null;
        (double? Mean, double? Min) Both(Func<bool, double?> f) => (f(false), f(true));

        var prefill = Both(m => M("Prefill128", m));
        var gemms = Both(m => M("OrtGemms128", m));
        Row(sb, "prefill 128 tokens, logits", prefill.Mean, $"the same GEMMs alone in ORT: {Ms(gemms.Mean)}",
            (prefill.Mean / gemms.Mean, prefill.Min / gemms.Min), "≤ 1.2×", prefill.Mean / gemms.Mean <= 1.2);

        var bw = Both(m => M("StreamRead1GiB", m) is { } ns ? (1L << 30) / (ns * 1e-9) : null);
        var bound = Both(m => (m ? bw.Min : bw.Mean) is { } b ? fp32 / b * 1e9 : null);
        var perToken = Both(m => (M("GenerateN", m) - M("Generate1", m)) / (Bench.DecodeSteps - 1));
        Row(sb, $"decode 1 token, KV cache ((generate {Bench.DecodeSteps} − generate 1) / {Bench.DecodeSteps - 1}, prompt {Bench.DecodePrompt})", perToken.Mean,
            string.Create(ci, $"weight bytes ÷ bandwidth: {fp32 / 1e9:F2} GB ÷ {bw.Mean / 1e9:F1} GB/s (stream read) = {Ms(bound.Mean)}"),
            (bound.Mean / perToken.Mean, bound.Min / perToken.Min), "≥ 0.7 of the bound", bound.Mean / perToken.Mean >= 0.7);
        var gemv = Both(m => M("OrtGemms1", m));
        Row(sb, "decode 1 token, KV cache", perToken.Mean, $"the same GEMMs alone in ORT at 1 token (ORT's GEMV stream): {Ms(gemv.Mean)}",
            (gemv.Mean / perToken.Mean, gemv.Min / perToken.Min), "(context)", null);

        var all = Both(m => M("Prefill128CaptureAll", m));
        Row(sb, "prefill 128 + capture every hook of every layer", all.Mean, $"prefill 128, no capture: {Ms(prefill.Mean)}",
            (all.Mean / prefill.Mean - 1, all.Min / prefill.Min - 1), "overhead ≤ 5%", all.Mean / prefill.Mean - 1 <= 0.05, percent: true);

        var stop = Both(m => M("StopAtMiddle", m));
        var full = Both(m => M("FullSameCapture", m));
        Row(sb, $"128 tokens, capture resid_post {layers / 2 - 1}, stop at layer {layers / 2} of {layers}, no logits", stop.Mean,
            $"the full graph with logits, same capture: {Ms(full.Mean)}", (full.Mean / stop.Mean, full.Min / stop.Min), "speedup", null);

        sb.AppendLine();
        sb.AppendLine(ci, $"Bandwidth probe: {(bw.Mean is null ? "n/a" : string.Create(ci, $"{bw.Mean / 1e9:F1} GB/s mean, {bw.Min / 1e9:F1} GB/s best iteration"))} (sum of a 1 GiB buffer, {Bench.Threads} threads). " +
            $"ORT GEMMs at 1 token: {(gemv.Mean is null ? "n/a" : string.Create(ci, $"{Ms(gemv.Mean)} = {fp32 / gemv.Mean.Value:F1} GB/s of weights"))}.");
        sb.AppendLine();
        sb.AppendLine("| load, fresh process each | FromPretrained | + first 1-token run | peak RSS (VmHWM) | ÷ fp32 weight bytes | RssAnon / RssFile at end |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (name, r, err) in probes)
        {
            if (r is null)
            {
                sb.AppendLine(ci, $"| {name} | failed: {err?.Replace('|', '/')} | | | | |");
                continue;
            }

            sb.AppendLine(ci, $"| {name} | {r.LoadMs:F0} ms | {r.FirstRunMs:F0} ms | {r.VmHwmKb / 1048576.0:F2} GiB | {r.VmHwmKb * 1024.0 / fp32:F2} | {r.RssAnonKb / 1048576.0:F2} / {r.RssFileKb / 1048576.0:F2} GiB |");
        }

        sb.AppendLine();
        sb.AppendLine("All BenchmarkDotNet rows:");
        sb.AppendLine();
        sb.AppendLine("| benchmark | mean | stddev |");
        sb.AppendLine("| --- | ---: | ---: |");
        foreach (var r in summary.Reports)
        {
            string desc = r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo;
            sb.AppendLine(r.ResultStatistics is { } s
                ? string.Create(ci, $"| {desc} | {Ms(s.Mean)} | {Ms(s.StandardDeviation)} |")
                : $"| {desc} | failed (see log) | |");
        }

        return sb.ToString();
    }

    private static void Row(StringBuilder sb, string what, double? ns, string baseline, (double? Mean, double? Min) ratio, string goal, bool? met, bool percent = false)
    {
        string R(double? r) => r is null ? "n/a" : percent ? string.Create(CultureInfo.InvariantCulture, $"{r * 100:+0.0;-0.0}%") : string.Create(CultureInfo.InvariantCulture, $"{r:F2}×");
        string m = ratio.Mean is null ? "" : met is null ? "" : met.Value ? "yes" : "no";
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {Ms(ns)} | {baseline} | {R(ratio.Mean)} [{R(ratio.Min)}] | {goal} | {m} |");
    }

    private static string Ms(double? ns) => ns is null ? "n/a" : string.Create(CultureInfo.InvariantCulture, $"{ns.Value / 1e6:F1} ms");
}
