using System.Globalization;

namespace GemmaScope.Kernels;

/// <summary>
/// Cache sizes as the operating system reports them, for blocking decisions (no per-CPU constants in the kernels).
/// Linux: /sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}. Elsewhere, or when unreadable, L2 is taken as
/// 1 MiB, the smallest per-core L2 of the AVX-512 server cores this library targets (a smaller guess only costs a
/// second K block, never correctness).
/// </summary>
internal static class CacheSizes
{
    private const long FallbackL2 = 1L << 20;

    private static readonly Lazy<long> L2Lazy = new(() => Read(2) ?? FallbackL2);

    /// <summary>Per-core L2 (unified or data) in bytes.</summary>
    public static long L2 => L2Lazy.Value;

    /// <summary>Where <see cref="L2"/> came from, for benchmark reports.</summary>
    public static string Describe() => Read(2) is { } b ? $"L2 {b >> 10} KiB (sysfs)" : $"L2 {FallbackL2 >> 10} KiB (fallback, not reported by the OS)";

    private static long? Read(int level)
    {
        try
        {
            const string root = "/sys/devices/system/cpu/cpu0/cache";
            if (!Directory.Exists(root))
            {
                return null;
            }

            foreach (var dir in Directory.EnumerateDirectories(root, "index*"))
            {
                string lv = File.ReadAllText(Path.Combine(dir, "level")).Trim();
                string type = File.ReadAllText(Path.Combine(dir, "type")).Trim();
                if (lv != level.ToString(CultureInfo.InvariantCulture) || type == "Instruction")
                {
                    continue;
                }

                string size = File.ReadAllText(Path.Combine(dir, "size")).Trim();
                long mul = 1;
                if (size.EndsWith('K'))
                {
                    mul = 1L << 10;
                    size = size[..^1];
                }
                else if (size.EndsWith('M'))
                {
                    mul = 1L << 20;
                    size = size[..^1];
                }

                if (long.TryParse(size, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v > 0)
                {
                    return v * mul;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }
}
