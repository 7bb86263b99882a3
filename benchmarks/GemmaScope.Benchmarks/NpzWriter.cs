using System.Buffers.Binary;
using System.Text;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Minimal numpy .npz writer for the load benchmark: stored (uncompressed) zip members, each with a zip64 extra field
/// (as numpy writes for large arrays), holding npy v1 float32 arrays in C order.
/// </summary>
internal static class NpzWriter
{
    public static void Write(string path, IReadOnlyList<(string Name, int[] Shape, float[] Data)> arrays)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        var central = new MemoryStream();
        foreach (var (name, shape, data) in arrays)
        {
            byte[] header = NpyHeader(shape);
            var body = System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan());
            uint crc = Crc32(Crc32(0, header), body);
            ulong size = (ulong)(header.Length + body.Length);
            long offset = fs.Position;
            byte[] fileName = Encoding.UTF8.GetBytes(name + ".npy");

            Span<byte> local = new byte[30];
            BinaryPrimitives.WriteUInt32LittleEndian(local, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(local[4..], 45);
            BinaryPrimitives.WriteUInt32LittleEndian(local[14..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(local[18..], 0xFFFFFFFF);
            BinaryPrimitives.WriteUInt32LittleEndian(local[22..], 0xFFFFFFFF);
            BinaryPrimitives.WriteUInt16LittleEndian(local[26..], (ushort)fileName.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(local[28..], 20);
            fs.Write(local);
            fs.Write(fileName);
            Span<byte> extra = new byte[20];
            BinaryPrimitives.WriteUInt16LittleEndian(extra, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(extra[2..], 16);
            BinaryPrimitives.WriteUInt64LittleEndian(extra[4..], size);
            BinaryPrimitives.WriteUInt64LittleEndian(extra[12..], size);
            fs.Write(extra);
            fs.Write(header);
            fs.Write(body);

            Span<byte> cd = new byte[46];
            cd.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(cd, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(cd[4..], 45);
            BinaryPrimitives.WriteUInt16LittleEndian(cd[6..], 45);
            BinaryPrimitives.WriteUInt32LittleEndian(cd[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(cd[20..], 0xFFFFFFFF);
            BinaryPrimitives.WriteUInt32LittleEndian(cd[24..], 0xFFFFFFFF);
            BinaryPrimitives.WriteUInt16LittleEndian(cd[28..], (ushort)fileName.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(cd[30..], 28);
            BinaryPrimitives.WriteUInt32LittleEndian(cd[42..], 0xFFFFFFFF);
            central.Write(cd);
            central.Write(fileName);
            Span<byte> cextra = new byte[28];
            BinaryPrimitives.WriteUInt16LittleEndian(cextra, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(cextra[2..], 24);
            BinaryPrimitives.WriteUInt64LittleEndian(cextra[4..], size);
            BinaryPrimitives.WriteUInt64LittleEndian(cextra[12..], size);
            BinaryPrimitives.WriteUInt64LittleEndian(cextra[20..], (ulong)offset);
            central.Write(cextra);
        }

        long cdOffset = fs.Position;
        central.Position = 0;
        central.CopyTo(fs);
        Span<byte> eocd = new byte[22];
        eocd.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(eocd, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(eocd[8..], (ushort)arrays.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(eocd[10..], (ushort)arrays.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(eocd[12..], (uint)central.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(eocd[16..], checked((uint)cdOffset));
        fs.Write(eocd);
    }

    private static byte[] NpyHeader(int[] shape)
    {
        string dims = shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}";
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        dict = dict.PadRight(dict.Length + (padded - total)) + "\n";
        var h = new byte[10 + dict.Length];
        h[0] = 0x93;
        "NUMPY"u8.CopyTo(h.AsSpan(1));
        h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(8), (ushort)dict.Length);
        Encoding.ASCII.GetBytes(dict, h.AsSpan(10));
        return h;
    }

    private static readonly uint[] Table = MakeTable();

    private static uint[] MakeTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }

            t[i] = c;
        }

        return t;
    }

    private static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        crc = ~crc;
        foreach (byte b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }
}
