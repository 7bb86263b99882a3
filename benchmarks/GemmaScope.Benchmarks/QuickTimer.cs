using System.Diagnostics;

namespace GemmaScope.Benchmarks;

/// <summary>The stopwatch loop of the quick (tuning) modes; the numbers of record come from BenchmarkDotNet.</summary>
internal static class QuickTimer
{
    /// <summary>Mean nanoseconds per call of <paramref name="act"/>: one warm-up call, then calls for at least 400 ms and at least 3 calls.</summary>
    public static double MeanNanoseconds(Action act)
    {
        act();
        int n = 0;
        var sw = Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 400 || n < 3)
        {
            act();
            n++;
        }

        return sw.Elapsed.TotalNanoseconds / n;
    }
}
