using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace GemmaScope.Formats;

/// <summary>
/// Reads and writes single numpy <c>.npy</c> arrays of float32, e.g. activations saved from Python with <c>np.save</c>.
/// </summary>
public static class Npy
{
    /// <summary>Reads a .npy file as float32 (converting float16/float64/big-endian/Fortran order), with its shape.</summary>
    /// <param name="path">The .npy file.</param>
    /// <exception cref="SaeFormatException">Not a .npy file, an unsupported dtype, or truncated data.</exception>
    public static unsafe (float[] Data, int[] Shape) ReadFloat32(string path)
    {
        using var map = MappedFile.Open(path);
        var name = Path.GetFileNameWithoutExtension(path);
        var header = NpyHeader.Parse(map.Slice(0, Math.Min(map.Length, NpyHeader.MaxHeaderBytes)), map.Path, name);
        var (dtype, big) = NpyHeader.ParseDescr(header.Descr, false, map.Path, name);
        var t = new RawTensor
        {
            File = map.Path,
            Name = name,
            DType = dtype,
            BigEndian = big,
            FortranOrder = header.FortranOrder && header.Shape.Length > 1,
            Shape = header.Shape,
            Data = map.Pointer + header.DataOffset,
        };
        map.CheckRange(header.DataOffset, t.ByteCount, name);
        if (map.Length != header.DataOffset + t.ByteCount)
        {
            throw new SaeFormatException(map.Path, name, "file has trailing bytes after the array (header and size disagree)", $"{header.DataOffset + t.ByteCount} bytes", $"{map.Length} bytes");
        }

        if (t.ElementCount > Array.MaxLength || header.Shape.Any(d => d > int.MaxValue))
        {
            throw new SaeFormatException(map.Path, name, "array too large for a managed array", $"<= {Array.MaxLength} elements", t.ElementCount.ToString());
        }

        var owned = new List<IDisposable>();
        try
        {
            float* p = TensorConvert.AsFloat32(t, 1f, owned);
            var data = new float[t.ElementCount];
            new ReadOnlySpan<float>(p, data.Length).CopyTo(data);
            return (data, [.. header.Shape.Select(d => checked((int)d))]);
        }
        finally
        {
            foreach (var o in owned)
            {
                o.Dispose();
            }
        }
    }

    /// <summary>Writes a little-endian float32 .npy (format 1.0, header padded to 64 bytes as numpy does).</summary>
    /// <param name="path">Destination.</param>
    /// <param name="data">Row-major values.</param>
    /// <param name="shape">Dimensions; their product must equal <paramref name="data"/>'s length.</param>
    public static void WriteFloat32(string path, ReadOnlySpan<float> data, params int[] shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            n *= d;
        }

        if (n != data.Length)
        {
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] holds {n} values; data has {data.Length}", nameof(shape));
        }

        var shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}";
        int pad = (64 - ((10 + dict.Length + 1) % 64)) % 64;
        var header = Encoding.ASCII.GetBytes(dict + new string(' ', pad) + "\n");
        using var fs = File.Create(path);
        fs.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.Write(MemoryMarshal.AsBytes(data));
    }
}
