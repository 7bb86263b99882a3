using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace GemmaScope.Hf.Tests;

/// <summary>
/// Writes a params.npz the way numpy's <c>np.savez</c> does: a zip of stored (uncompressed) <c>NAME.npy</c> members, each
/// an npy v1.0 file (magic, header dict padded to a multiple of 64 bytes, little-endian float32 data in C order).
/// </summary>
internal static class NpzWriter
{
    public static void Write(string path, params (string Name, int[] Shape, float[] Data)[] arrays)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        foreach (var (name, shape, data) in arrays)
        {
            var entry = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression);
            using var stream = entry.Open();
            stream.Write(Npy(shape, data));
        }
    }

    private static byte[] Npy(int[] shape, float[] data)
    {
        var dims = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")";
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}";
        var unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - (unpadded % 64)) % 64) + "\n";
        var bytes = new byte[10 + header.Length + (data.Length * 4)];
        bytes[0] = 0x93;
        Encoding.ASCII.GetBytes("NUMPY").CopyTo(bytes, 1);
        bytes[6] = 1;
        bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(bytes, 10);
        for (var i = 0; i < data.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(10 + header.Length + (i * 4)), data[i]);
        }

        return bytes;
    }
}
