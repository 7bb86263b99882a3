using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace GemmaScope.Tests.Support;

/// <summary>
/// Test-side npz access, independent of the library's reader: System.IO.Compression reads the zip and a regex the header.
/// The writer produces what numpy's np.savez produces (stored members, zip64 extra fields, npy 1.0 headers padded to 64).
/// </summary>
internal static partial class TestNpz
{
    public sealed record Array(string Descr, bool Fortran, int[] Shape, double[] Data);

    public static Dictionary<string, Array> Read(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var result = new Dictionary<string, Array>();
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            result[e.FullName[..^4]] = ParseNpy(ms.ToArray());
        }

        return result;
    }

    public static Array ParseNpy(byte[] b)
    {
        int major = b[6];
        int len = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
        int start = major == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(b, start, len);
        var descr = DescrRe().Match(header).Groups[1].Value;
        bool fortran = header.Contains("'fortran_order': True");
        var shape = ShapeRe().Match(header).Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        int n = shape.Aggregate(1, (a, d) => a * d);
        var data = new double[n];
        int off = start + len;
        bool big = descr[0] == '>';
        int size = int.Parse(descr[2..]);
        for (int i = 0; i < n; i++)
        {
            var span = b.AsSpan(off + (i * size), size);
            data[i] = (descr[1], size, big) switch
            {
                ('f', 4, false) => BinaryPrimitives.ReadSingleLittleEndian(span),
                ('f', 4, true) => BinaryPrimitives.ReadSingleBigEndian(span),
                ('f', 8, false) => BinaryPrimitives.ReadDoubleLittleEndian(span),
                ('f', 8, true) => BinaryPrimitives.ReadDoubleBigEndian(span),
                ('f', 2, false) => (double)BinaryPrimitives.ReadHalfLittleEndian(span),
                _ => throw new NotSupportedException(descr),
            };
        }

        if (fortran && shape.Length == 2)
        {
            var c = new double[n];
            for (int r = 0; r < shape[0]; r++)
            {
                for (int col = 0; col < shape[1]; col++)
                {
                    c[(r * shape[1]) + col] = data[(col * shape[0]) + r];
                }
            }

            data = c;
        }

        return new Array(descr, fortran, shape, data);
    }

    /// <summary>npy 1.0 bytes for a float32 (or any descr with raw bytes given) array.</summary>
    public static byte[] Npy(string descr, int[] shape, ReadOnlySpan<byte> raw, bool fortran = false)
    {
        var shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        var dict = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shapeText}, }}";
        int total = 10 + dict.Length + 1;
        int pad = (64 - (total % 64)) % 64;
        var header = dict + new string(' ', pad) + "\n";
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        var len = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        ms.Write(len);
        ms.Write(Encoding.ASCII.GetBytes(header));
        ms.Write(raw);
        return ms.ToArray();
    }

    public static byte[] Npy(float[] data, int[] shape) =>
        Npy("<f4", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));

    /// <summary>A zip of stored members with zip64 extra fields in local and central headers, as numpy's savez writes.</summary>
    public static byte[] Zip(IEnumerable<(string Name, byte[] Data)> members)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        var central = new List<(string Name, long Offset, uint Crc, long Size)>();
        foreach (var (name, data) in members)
        {
            long offset = ms.Position;
            uint crc = System.IO.Hashing.Crc32Compat.Compute(data);
            var nameBytes = Encoding.UTF8.GetBytes(name);
            w.Write(0x04034b50u);
            w.Write((ushort)45);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0x21);
            w.Write(crc);
            w.Write(0xFFFFFFFFu);
            w.Write(0xFFFFFFFFu);
            w.Write((ushort)nameBytes.Length);
            w.Write((ushort)20);
            w.Write(nameBytes);
            w.Write((ushort)1);
            w.Write((ushort)16);
            w.Write((ulong)data.Length);
            w.Write((ulong)data.Length);
            w.Write(data);
            central.Add((name, offset, crc, data.Length));
        }

        long cdStart = ms.Position;
        foreach (var (name, offset, crc, size) in central)
        {
            var nameBytes = Encoding.UTF8.GetBytes(name);
            w.Write(0x02014b50u);
            w.Write((ushort)45);
            w.Write((ushort)45);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0x21);
            w.Write(crc);
            w.Write(0xFFFFFFFFu);
            w.Write(0xFFFFFFFFu);
            w.Write((ushort)nameBytes.Length);
            w.Write((ushort)28);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write(0u);
            w.Write(0xFFFFFFFFu);
            w.Write(nameBytes);
            w.Write((ushort)1);
            w.Write((ushort)24);
            w.Write((ulong)size);
            w.Write((ulong)size);
            w.Write((ulong)offset);
        }

        long cdSize = ms.Position - cdStart;
        WriteZip64End(w, central.Count, cdSize, cdStart);
        return ms.ToArray();
    }

    /// <summary>
    /// Writes the zip64 end of central directory record, its locator and the classic end record (all counts and sizes
    /// 0xFFFF / 0xFFFFFFFF, so readers must use the zip64 values), as numpy's zipfile does for large archives.
    /// </summary>
    public static void WriteZip64End(BinaryWriter w, long entries, long cdSize, long cdStart)
    {
        long z64 = w.BaseStream.Position;
        w.Write(0x06064b50u);
        w.Write(44UL);
        w.Write((ushort)45);
        w.Write((ushort)45);
        w.Write(0u);
        w.Write(0u);
        w.Write((ulong)entries);
        w.Write((ulong)entries);
        w.Write((ulong)cdSize);
        w.Write((ulong)cdStart);
        w.Write(0x07064b50u);
        w.Write(0u);
        w.Write((ulong)z64);
        w.Write(1u);
        w.Write(0x06054b50u);
        w.Write((ushort)0);
        w.Write((ushort)0);
        w.Write((ushort)0xFFFF);
        w.Write((ushort)0xFFFF);
        w.Write(0xFFFFFFFFu);
        w.Write(0xFFFFFFFFu);
        w.Write((ushort)0);
    }

    [GeneratedRegex(@"'descr':\s*'([^']*)'")]
    private static partial Regex DescrRe();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapeRe();
}
