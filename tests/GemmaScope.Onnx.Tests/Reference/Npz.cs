using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace GemmaScope.Tests.Reference;

/// <summary>Minimal reader for numpy .npz files of little-endian float32 or float64 C-order arrays (test fixtures only).</summary>
internal static partial class Npz
{
    public static Dictionary<string, (int[] Shape, float[] Data)> Read(string path) =>
        ReadAs(path, "<f4", b => { var d = new float[b.Length / 4]; Buffer.BlockCopy(b, 0, d, 0, b.Length); return d; });

    /// <summary>Reads an .npz of C-order little-endian float64 arrays (reference activations).</summary>
    public static Dictionary<string, (int[] Shape, double[] Data)> ReadFloat64(string path) =>
        ReadAs(path, "<f8", b => { var d = new double[b.Length / 8]; Buffer.BlockCopy(b, 0, d, 0, b.Length); return d; });

    private static Dictionary<string, (int[] Shape, T[] Data)> ReadAs<T>(string path, string descr, Func<byte[], T[]> convert)
    {
        int size = descr == "<f8" ? 8 : 4;
        var result = new Dictionary<string, (int[], T[])>(StringComparer.Ordinal);
        using var zip = ZipFile.OpenRead(path);
        foreach (var entry in zip.Entries)
        {
            using var s = entry.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            var bytes = ms.ToArray();
            if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            {
                throw new InvalidDataException($"{path}:{entry.FullName} is not an .npy member.");
            }

            int major = bytes[6];
            int headerLen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
            int start = major == 1 ? 10 : 12;
            var header = Encoding.ASCII.GetString(bytes, start, headerLen);
            if (!header.Contains($"'descr': '{descr}'", StringComparison.Ordinal) || header.Contains("'fortran_order': True", StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}:{entry.FullName}: only C-order {descr} arrays are supported, header {header}.");
            }

            var shapeText = ShapeRegex().Match(header).Groups[1].Value;
            var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
            int count = shape.Aggregate(1, (a, b) => a * b);
            var data = convert(bytes.AsSpan(start + headerLen, count * size).ToArray());
            result[entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName] = (shape, data);
        }

        return result;
    }

    [GeneratedRegex(@"'shape': \(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
