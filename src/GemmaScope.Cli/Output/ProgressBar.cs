using System.Diagnostics;
using System.Globalization;
using GemmaScope.Hf;

namespace GemmaScope.Cli.Output;

/// <summary>
/// A download progress bar on stderr: bar, percent, bytes, speed and time left, redrawn in place at most 10 times a second.
/// When stderr is not a terminal it prints one line per 25 % instead, so logs stay readable.
/// </summary>
/// <remarks>Reports arrive on the downloading thread (synchronously, unlike <see cref="Progress{T}"/>); not thread-safe beyond that.</remarks>
internal sealed class ProgressBar : IProgress<DownloadProgress>
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _terminal = !Console.IsErrorRedirected;
    private long _startBytes = -1;
    private long _lastDraw = -1;
    private int _lastQuarter = -1;

    public long Bytes { get; private set; }

    public bool Drew { get; private set; }

    public void Report(DownloadProgress value)
    {
        if (_startBytes < 0)
        {
            _startBytes = value.BytesDownloaded; // bytes kept from an interrupted attempt do not count towards speed
        }

        Bytes = value.BytesDownloaded;
        var now = _clock.ElapsedMilliseconds;
        var done = value.TotalBytes is long t && value.BytesDownloaded >= t;
        if (_terminal)
        {
            if (done || now - _lastDraw >= 100)
            {
                _lastDraw = now;
                Console.Error.Write("\r" + Line(value) + "\u001b[K");
                Drew = true;
            }

            return;
        }

        var quarter = value.TotalBytes is long total && total > 0 ? (int)(4 * value.BytesDownloaded / total) : 0;
        if (quarter > _lastQuarter)
        {
            _lastQuarter = quarter;
            Console.Error.WriteLine(Line(value));
            Drew = true;
        }
    }

    public void Finish()
    {
        if (_terminal && Drew)
        {
            Console.Error.WriteLine();
        }
    }

    private string Line(DownloadProgress p)
    {
        var seconds = Math.Max(_clock.Elapsed.TotalSeconds, 1e-3);
        var speed = (p.BytesDownloaded - _startBytes) / seconds;
        if (p.TotalBytes is not long total || total <= 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Units.Bytes(p.BytesDownloaded)}  {Units.Bytes(speed)}/s");
        }

        var fraction = Math.Clamp((double)p.BytesDownloaded / total, 0, 1);
        const int width = 30;
        var filled = (int)(fraction * width);
        var left = speed > 0 ? TimeSpan.FromSeconds((total - p.BytesDownloaded) / speed) : TimeSpan.Zero;
        return string.Create(
            CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', width - filled)}] {fraction * 100,5:0.0}%  {Units.Bytes(p.BytesDownloaded)} / {Units.Bytes(total)}  {Units.Bytes(speed)}/s  {Units.Duration(left)} left");
    }
}
