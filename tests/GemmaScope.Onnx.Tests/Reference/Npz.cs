using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace GemmaScope.Tests.Reference;

/// <summary>Minimal reader for numpy .npz files of little-endian float32 C-order arrays (test fixtures only).</summary>
internal static partial class Npz
{
    public static Dictionary<string, (int[] Shape, float[] Data)> Read(string path)
    {
        var result = new Dictionary<string, (int[], float[])>(StringComparer.Ordinal);
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
            if (!header.Contains("'descr': '<f4'", StringComparison.Ordinal) || header.Contains("'fortran_order': True", StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}:{entry.FullName}: only C-order <f4 arrays are supported, header {header}.");
            }

            var shapeText = ShapeRegex().Match(header).Groups[1].Value;
            var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
            int count = shape.Aggregate(1, (a, b) => a * b);
            var data = new float[count];
            Buffer.BlockCopy(bytes, start + headerLen, data, 0, count * 4);
            result[entry.FullName.EndsWith(".npy", StringComparison.Ordinal) ? entry.FullName[..^4] : entry.FullName] = (shape, data);
        }

        return result;
    }

    [GeneratedRegex(@"'shape': \(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
