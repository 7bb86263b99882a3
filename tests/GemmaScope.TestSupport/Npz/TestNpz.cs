using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace GemmaScope.TestSupport;

/// <summary>
/// Test-side npz access, independent of the library's reader: System.IO.Compression reads the zip and a regex the header.
/// The writers produce what numpy's <c>np.savez</c> produces (stored members, zip64 extra fields in local and central
/// headers, npy 1.0 headers padded to 64 bytes, then the zip64 end records); every zip field is written explicitly so
/// that a malformed-file test can make one of them lie.
/// </summary>
public static partial class TestNpz
{
    /// <summary>One array as read: dtype text, memory order, shape, and the values widened to float64 (C order).</summary>
    public sealed record Array(string Descr, bool Fortran, int[] Shape, double[] Data);

    /// <summary>One central directory entry as written (a test may rewrite it before it is written: see <see cref="Zip(IReadOnlyList{ValueTuple{string, byte[], int}}, Func{List{Entry}, List{Entry}}?, long?, Func{long, long}?)"/>).</summary>
    public sealed record Entry(string Name, long LocalOffset, long Size, long CompSize, uint Crc, int Method);

    /// <summary>Every member of an npz, by name without <c>.npy</c>: float16/32/64, either byte order, C or Fortran order.</summary>
    public static Dictionary<string, Array> Read(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var result = new Dictionary<string, Array>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            var name = e.FullName.EndsWith(".npy", StringComparison.Ordinal) ? e.FullName[..^4] : e.FullName;
            result[name] = ParseNpy(ms.ToArray(), $"{path}:{e.FullName}");
        }

        return result;
    }

    /// <summary>Every member as float32 (for weights written as float32: the values are exact).</summary>
    public static Dictionary<string, (int[] Shape, float[] Data)> ReadFloat32(string path)
    {
        var result = new Dictionary<string, (int[], float[])>(StringComparer.Ordinal);
        foreach (var (name, a) in Read(path))
        {
            var data = new float[a.Data.Length];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = (float)a.Data[i];
            }

            result[name] = (a.Shape, data);
        }

        return result;
    }

    /// <summary>Every member as float64 (reference activations).</summary>
    public static Dictionary<string, (int[] Shape, double[] Data)> ReadFloat64(string path)
    {
        var result = new Dictionary<string, (int[], double[])>(StringComparer.Ordinal);
        foreach (var (name, a) in Read(path))
        {
            result[name] = (a.Shape, a.Data);
        }

        return result;
    }

    /// <summary>Parses one npy file (versions 1 to 3).</summary>
    public static Array ParseNpy(byte[] b, string what = "npy")
    {
        if (b.Length < 10 || b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY")
        {
            throw new InvalidDataException($"{what} is not an npy file.");
        }

        int major = b[6];
        int len = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
        int start = major == 1 ? 10 : 12;
        var header = Encoding.ASCII.GetString(b, start, len);
        var descr = DescrRe().Match(header).Groups[1].Value;
        bool fortran = header.Contains("'fortran_order': True", StringComparison.Ordinal);
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
                _ => throw new NotSupportedException($"{what}: dtype {descr}"),
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

    /// <summary>The header dict numpy writes for a dtype, order and shape.</summary>
    public static string HeaderDict(string descr, int[] shape, bool fortran = false)
    {
        var shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        return $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shapeText}, }}";
    }

    /// <summary>
    /// An npy file with the header dict given verbatim: version <paramref name="major"/>.<paramref name="minor"/>, padded with
    /// spaces and a newline to a multiple of 64 bytes unless <paramref name="pad"/> is false, then the data bytes.
    /// </summary>
    public static byte[] NpyWithHeader(string dict, ReadOnlySpan<byte> data, int major = 1, int minor = 0, bool pad = true)
    {
        var ms = new MemoryStream();
        ms.Write(NpyHead(dict, major, minor, pad));
        ms.Write(data);
        return ms.ToArray();
    }

    /// <summary>npy 1.0 bytes for an array whose raw bytes are given.</summary>
    public static byte[] Npy(string descr, int[] shape, ReadOnlySpan<byte> raw, bool fortran = false) =>
        NpyWithHeader(HeaderDict(descr, shape, fortran), raw);

    /// <summary>npy 1.0 bytes for a little-endian float32 array in C order.</summary>
    public static byte[] Npy(float[] data, int[] shape) => Npy("<f4", shape, MemoryMarshal.AsBytes(data.AsSpan()));

    /// <summary>The raw little-endian bytes of a float32 array.</summary>
    public static byte[] F32(float[] a) => MemoryMarshal.AsBytes(a.AsSpan()).ToArray();

    /// <summary>Raw deflate (zip method 8) of the bytes.</summary>
    public static byte[] Deflate(byte[] data)
    {
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            d.Write(data);
        }

        return ms.ToArray();
    }

    /// <summary>A zip of stored members, as numpy's savez writes.</summary>
    public static byte[] Zip(IEnumerable<(string Name, byte[] Data)> members, int method = 0) =>
        Zip([.. members.Select(m => (m.Name, m.Data, method))]);

    /// <summary>
    /// A zip written field by field: local records for <paramref name="locals"/> (name in the local header, bytes, method 0
    /// or 8), then the central directory from <paramref name="entries"/> (default: one per local record, the truth), then
    /// zip64 end records declaring <paramref name="declaredEntries"/> entries and <paramref name="declaredCdSize"/> bytes
    /// (defaults: the truth).
    /// </summary>
    public static byte[] Zip(IReadOnlyList<(string Name, byte[] Data, int Method)> locals, Func<List<Entry>, List<Entry>>? entries = null,
        long? declaredEntries = null, Func<long, long>? declaredCdSize = null)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        var list = new List<Entry>();
        foreach (var (name, data, method) in locals)
        {
            long offset = ms.Position;
            uint crc = Crc32.HashToUInt32(data);
            byte[] stored = method == 8 ? Deflate(data) : data;
            WriteLocalHeader(w, name, crc, data.Length, stored.Length, method);
            w.Write(stored);
            list.Add(new Entry(name, offset, data.Length, stored.Length, crc, method));
        }

        if (entries is not null)
        {
            list = entries(list);
        }

        long cdStart = ms.Position;
        foreach (var e in list)
        {
            WriteCentralEntry(w, e);
        }

        long cdSize = ms.Position - cdStart;
        WriteZip64End(w, declaredEntries ?? list.Count, declaredCdSize?.Invoke(cdSize) ?? cdSize, cdStart);
        return ms.ToArray();
    }

    /// <summary>The bytes of an npz of float32 arrays as numpy's savez writes it (the same bytes <see cref="Write"/> writes to a file).</summary>
    public static byte[] Npz(params IReadOnlyList<(string Name, int[] Shape, float[] Data)> arrays) =>
        Zip(arrays.Select(a => (a.Name + ".npy", Npy(a.Data, a.Shape))));

    /// <summary>
    /// Writes float32 arrays to an npz file as numpy's savez does, streaming (a benchmark's SAE of a few GB never sits in one
    /// byte array).
    /// </summary>
    public static void Write(string path, params IReadOnlyList<(string Name, int[] Shape, float[] Data)> arrays)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var w = new BinaryWriter(fs);
        var list = new List<Entry>();
        foreach (var (name, shape, data) in arrays)
        {
            var head = NpyHead(HeaderDict("<f4", shape), 1, 0, pad: true);
            var body = MemoryMarshal.AsBytes(data.AsSpan());
            var crc = new Crc32();
            crc.Append(head);
            crc.Append(body);
            long size = head.Length + body.Length;
            long offset = fs.Position;
            var entry = new Entry(name + ".npy", offset, size, size, crc.GetCurrentHashAsUInt32(), 0);
            WriteLocalHeader(w, entry.Name, entry.Crc, size, size, 0);
            w.Write(head);
            w.Write(body);
            list.Add(entry);
        }

        long cdStart = fs.Position;
        foreach (var e in list)
        {
            WriteCentralEntry(w, e);
        }

        WriteZip64End(w, list.Count, fs.Position - cdStart, cdStart);
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

    private static byte[] NpyHead(string dict, int major, int minor, bool pad)
    {
        int pre = major == 1 ? 10 : 12;
        int padLen = pad ? (64 - ((pre + dict.Length + 1) % 64)) % 64 : 0;
        var header = Encoding.Latin1.GetBytes(dict + new string(' ', padLen) + (pad ? "\n" : ""));
        var head = new byte[pre + header.Length];
        head[0] = 0x93;
        "NUMPY"u8.CopyTo(head.AsSpan(1));
        head[6] = (byte)major;
        head[7] = (byte)minor;
        if (major == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(8), (ushort)header.Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(8), (uint)header.Length);
        }

        header.CopyTo(head, pre);
        return head;
    }

    // Local header with sizes 0xFFFFFFFF and a zip64 extra field holding the real sizes (numpy's zipfile with force_zip64).
    private static void WriteLocalHeader(BinaryWriter w, string name, uint crc, long size, long compSize, int method)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        w.Write(0x04034b50u);
        w.Write((ushort)45);
        w.Write((ushort)0);
        w.Write((ushort)method);
        w.Write(0u);
        w.Write(crc);
        w.Write(0xFFFFFFFFu);
        w.Write(0xFFFFFFFFu);
        w.Write((ushort)nameBytes.Length);
        w.Write((ushort)20);
        w.Write(nameBytes);
        w.Write((ushort)1);
        w.Write((ushort)16);
        w.Write((ulong)size);
        w.Write((ulong)compSize);
    }

    private static void WriteCentralEntry(BinaryWriter w, Entry e)
    {
        var nameBytes = Encoding.UTF8.GetBytes(e.Name);
        w.Write(0x02014b50u);
        w.Write((ushort)45);
        w.Write((ushort)45);
        w.Write((ushort)0);
        w.Write((ushort)e.Method);
        w.Write(0u);
        w.Write(e.Crc);
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
        w.Write((ulong)e.Size);
        w.Write((ulong)e.CompSize);
        w.Write((ulong)e.LocalOffset);
    }

    [GeneratedRegex(@"'descr':\s*'([^']*)'")]
    private static partial Regex DescrRe();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapeRe();
}
