using System.Diagnostics;
using System.Globalization;
using GemmaScope.Onnx;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Load time and peak resident memory, one fresh process per measurement: <c>FromPretrained</c>, then a first
/// 1-token run with logits (sessions may be created lazily, so both times are reported). Peaks are read from
/// /proc/self/status: VmHWM (peak RSS: anonymous + file-backed pages, so mapped safetensors pages count).
/// </summary>
internal static class LoadProbe
{
    public sealed record Result(double LoadMs, double FirstRunMs, long VmHwmKb, long RssAnonKb, long RssFileKb);

    public static void Child(string folder)
    {
        var sw = Stopwatch.StartNew();
        using var model = ModelHost.Open(folder);
        double load = sw.Elapsed.TotalMilliseconds;
        _ = model.Run([2]).Logits()[0];
        double first = sw.Elapsed.TotalMilliseconds;
        var status = File.ReadAllLines("/proc/self/status").ToDictionary(l => l[..l.IndexOf(':')], l => l[(l.IndexOf(':') + 1)..].Trim().Split(' ')[0], StringComparer.Ordinal);
        Console.WriteLine(FormattableString.Invariant($"RESULT {load:F0} {first:F0} {status["VmHWM"]} {status["RssAnon"]} {status["RssFile"]}"));
    }

    public static Result? Spawn(string folder, string? binding, out string? error) => Spawn("loadprobe", folder, binding, out error);

    /// <summary>Runs this program again as <c>{mode} {folder}</c> (a fresh process, so peaks are its own) and parses its RESULT line.</summary>
    public static Result? Spawn(string mode, string folder, string? binding, out string? error)
    {
        string self = Environment.ProcessPath!;
        var psi = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? new ProcessStartInfo(self, [typeof(LoadProbe).Assembly.Location, mode, folder])
            : new ProcessStartInfo(self, [mode, folder]);
        psi.RedirectStandardOutput = true;
        psi.Environment["GEMMASCOPE_BENCH_BINDING"] = binding ?? "";
        psi.RedirectStandardError = true;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (line is null)
        {
            string all = (stdout + stderr.Result).Trim();
            error = all.Split('\n').FirstOrDefault(l => l.Contains("Exception", StringComparison.Ordinal)) ?? all[..Math.Min(300, all.Length)];
            return null;
        }

        error = null;
        var f = line.Split(' ');
        return new Result(double.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture),
            long.Parse(f[3], CultureInfo.InvariantCulture), long.Parse(f[4], CultureInfo.InvariantCulture), long.Parse(f[5], CultureInfo.InvariantCulture));
    }
}
