using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;

namespace GemmaScope.Model.Benchmarks;

/// <summary>The results as ratios to the baselines measured in the same run, with the goals of issue 11.</summary>
internal static class Report
{
    public static string Table(Summary summary, List<(string Name, LoadProbe.Result? R, string? Error)> probes, string machine, DateTime started, DateTime ended)
    {
        var mean = summary.Reports.Where(r => r.ResultStatistics is not null)
            .ToDictionary(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name, r => r.ResultStatistics!.Mean, StringComparer.Ordinal);
        double? M(string name) => mean.TryGetValue(name, out double v) ? v : null;
        int layers = Bench.Layers;
        long fp32 = CheckpointGenerator.Fp32Bytes(layers);
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine(ci, $"Gemma 2 2B-shaped checkpoint, random weights, {layers} layers (d_model 2304, d_ff 9216, 8×256 q heads, 4 KV heads, vocab 256000), fp32 weights {fp32 / 1e9:F2} GB.");
        sb.AppendLine(ci, $"Run {started:yyyy-MM-dd HH:mm}–{ended:HH:mm} UTC. {machine}");
        sb.AppendLine();
        sb.AppendLine("| measurement | mean | baseline (same run) | ratio | goal | met |");
        sb.AppendLine("| --- | ---: | --- | ---: | --- | --- |");

        double? gemms = M("OrtGemms128"), prefill = M("Prefill128");
        Row(sb, "prefill 128 tokens, logits", prefill, "the same GEMMs alone in ORT", gemms, prefill / gemms, "≤ 1.2×", prefill / gemms <= 1.2);

        double? stream = M("StreamRead1GiB");
        double? bw = stream is null ? null : (1L << 30) / (stream.Value * 1e-9);
        double? boundNs = bw is null ? null : fp32 / bw.Value * 1e9;
        double? g1 = M("Generate1"), gN = M("GenerateN");
        double? perToken = g1 is null || gN is null ? null : (gN - g1) / (Bench.DecodeSteps - 1);
        Row(sb, $"decode 1 token, KV cache ((generate {Bench.DecodeSteps} − generate 1) / {Bench.DecodeSteps - 1}, prompt {Bench.DecodePrompt})", perToken,
            bw is null ? "weight bytes ÷ bandwidth" : string.Create(ci, $"{fp32 / 1e9:F2} GB ÷ {bw / 1e9:F1} GB/s (stream read) = {Ms(boundNs)}"),
            boundNs, boundNs / perToken, "≥ 0.7 of the bound", boundNs / perToken >= 0.7);
        double? gemv = M("OrtGemms1");
        Row(sb, "decode 1 token, KV cache", perToken, "the same GEMMs alone in ORT at 1 token (ORT's GEMV stream)", gemv, gemv / perToken, "(context)", null);

        double? all = M("Prefill128CaptureAll");
        Row(sb, "prefill 128 + capture every hook of every layer", all, "prefill 128, no capture", prefill, all / prefill - 1, "overhead ≤ 5%", all / prefill - 1 <= 0.05, percent: true);

        double? stop = M("StopAtMiddle"), full = M("FullSameCapture");
        Row(sb, $"capture resid_post {layers / 2 - 1} (stop at layer {layers / 2} of {layers}, no logits)", stop, "the full graph, same capture, logits", full, full / stop, "speedup", null);

        sb.AppendLine();
        sb.AppendLine(ci, $"Bandwidth probe: {(bw is null ? "n/a" : string.Create(ci, $"{bw / 1e9:F1} GB/s"))} (sum of a 1 GiB buffer, {Bench.Threads} threads). " +
            $"ORT GEMMs at 1 token: {(gemv is null ? "n/a" : string.Create(ci, $"{Ms(gemv)} = {fp32 / gemv.Value:F1} GB/s of weights"))}.");
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

    private static void Row(StringBuilder sb, string what, double? ns, string baseline, double? baseNs, double? ratio, string goal, bool? met, bool percent = false)
    {
        string r = ratio is null ? "n/a" : percent ? string.Create(CultureInfo.InvariantCulture, $"{ratio * 100:+0.0;-0.0}%") : string.Create(CultureInfo.InvariantCulture, $"{ratio:F2}×");
        string b = baseNs is null || baseline.Contains('=', StringComparison.Ordinal) ? baseline : $"{baseline}: {Ms(baseNs)}";
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {Ms(ns)} | {b} | {r} | {goal} | {(met is null ? "" : met.Value ? "yes" : "no")} |");
    }

    private static string Ms(double? ns) => ns is null ? "n/a" : string.Create(CultureInfo.InvariantCulture, $"{ns.Value / 1e6:F1} ms");
}
