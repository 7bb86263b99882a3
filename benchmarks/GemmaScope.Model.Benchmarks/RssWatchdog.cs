using System.Globalization;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Stops the process when its resident memory (VmRSS: anonymous + mapped file pages, from /proc/self/status) passes
/// GEMMASCOPE_BENCH_RSS_LIMIT_GB (default 20), checked every 100 ms, so that a run never takes a shared machine down.
/// Also tracks the peak it saw (VmHWM is reported separately, from the kernel).
/// </summary>
internal sealed class RssWatchdog : IDisposable
{
    private readonly Timer _timer;

    public RssWatchdog()
    {
        LimitBytes = (long)((double.TryParse(Environment.GetEnvironmentVariable("GEMMASCOPE_BENCH_RSS_LIMIT_GB"), CultureInfo.InvariantCulture, out double gb) ? gb : 20) * (1L << 30));
        _timer = new Timer(_ => Check(), null, 0, 100);
    }

    public long LimitBytes { get; }

    public static long StatusKb(string field)
    {
        if (!File.Exists("/proc/self/status"))
        {
            return 0;
        }

        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    private void Check()
    {
        long rss = StatusKb("VmRSS") * 1024;
        if (rss > LimitBytes)
        {
            Console.Error.WriteLine(FormattableString.Invariant($"RSS watchdog: VmRSS {rss / 1e9:F2} GB passed the limit {LimitBytes / 1e9:F2} GB (GEMMASCOPE_BENCH_RSS_LIMIT_GB); stopping."));
            Environment.Exit(3);
        }
    }

    public void Dispose() => _timer.Dispose();
}
