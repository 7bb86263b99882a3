using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace GemmaScope.TestSupport;

/// <summary>
/// Test-side safetensors files, independent of the library: an 8-byte little-endian header length, the JSON header
/// (padded with spaces to a multiple of 8), then the tensors' bytes at the offsets the header gives.
/// </summary>
public static class TestSafeTensors
{
    /// <summary>One tensor as the header describes it; <see cref="Bytes"/> is its slice of the file.</summary>
    public sealed record Tensor(string Name, string DType, long[] Shape, byte[] Bytes)
    {
        /// <summary>The bytes as float32 (dtype F32 only).</summary>
        public float[] F32 => DType == "F32" ? MemoryMarshal.Cast<byte, float>(Bytes).ToArray() : throw new InvalidOperationException($"{Name} is {DType}, not F32");
    }

    /// <summary>A file from header JSON as given (padded with spaces to 8 bytes) and the data bytes.</summary>
    public static byte[] Build(string headerJson, byte[] data) => Build(Encoding.UTF8.GetBytes(headerJson), data);

    /// <summary>A file from header bytes as given (padded with spaces to 8 bytes) and the data bytes.</summary>
    public static byte[] Build(byte[] header, byte[] data)
    {
        int padded = (header.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        data.CopyTo(bytes, 8 + padded);
        return bytes;
    }

    /// <summary>A file of float32 tensors, in the order given, with optional <c>__metadata__</c>.</summary>
    public static byte[] F32(IEnumerable<(string Name, int[] Shape, float[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Of([.. tensors.Select(t => (t.Name, "F32", t.Shape, MemoryMarshal.AsBytes(t.Data.AsSpan()).ToArray()))], metadata);

    /// <summary>A file of tensors given as raw bytes with their dtype, in the order given.</summary>
    public static byte[] Of(IReadOnlyList<(string Name, string DType, int[] Shape, byte[] Bytes)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var data = new MemoryStream();
        foreach (var (_, _, _, bytes) in tensors)
        {
            data.Write(bytes);
        }

        return Build(HeaderJson([.. tensors.Select(t => (t.Name, t.DType, t.Shape.Select(d => (long)d).ToArray(), (long)t.Bytes.Length))], metadata), data.ToArray());
    }

    /// <summary>
    /// The beginning of a file of float32 tensors stored back to back in the order given (header length and padded header),
    /// and the number of data bytes that must follow it: for writers that stream data too large to hold.
    /// </summary>
    public static (byte[] Head, long DataBytes) F32Head(IReadOnlyList<(string Name, long[] Shape)> tensors)
    {
        var sized = tensors.Select(t => (t.Name, "F32", t.Shape, t.Shape.Aggregate(4L, (a, b) => a * b))).ToList();
        return (Build(HeaderJson(sized, null), []), sized.Sum(t => t.Item4));
    }

    // {"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets" [begin, end) }, ...} for tensors stored back to back.
    private static string HeaderJson(IReadOnlyList<(string Name, string DType, long[] Shape, long Bytes)> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var header = new StringBuilder("{");
        if (metadata is not null)
        {
            header.Append("\"__metadata__\":").Append(JsonSerializer.Serialize(metadata)).Append(',');
        }

        long begin = 0;
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            header.Append(CultureInfo.InvariantCulture, $"{JsonSerializer.Serialize(name)}:{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{begin},{begin + bytes}]}},");
            begin += bytes;
        }

        if (header[^1] == ',')
        {
            header.Length--;
        }

        return header.Append('}').ToString();
    }

    /// <summary>Writes a file of float32 tensors.</summary>
    public static void WriteF32(string path, IEnumerable<(string Name, int[] Shape, float[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        File.WriteAllBytes(path, F32(tensors, metadata));

    /// <summary>Every tensor of a file, by name, in header order (no <c>__metadata__</c>).</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(File.ReadAllBytes(path));

    /// <summary>Every tensor of a file's bytes, by name, in header order (no <c>__metadata__</c>).</summary>
    public static Dictionary<string, Tensor> Read(byte[] file)
    {
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        using var doc = JsonDocument.Parse(file.AsMemory(8, n));
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                continue;
            }

            var off = p.Value.GetProperty("data_offsets");
            long begin = off[0].GetInt64(), end = off[1].GetInt64();
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            result[p.Name] = new Tensor(p.Name, p.Value.GetProperty("dtype").GetString()!, shape, file.AsSpan((int)(8 + n + begin), (int)(end - begin)).ToArray());
        }

        return result;
    }

    /// <summary>The <c>__metadata__</c> object of a file, or an empty map.</summary>
    public static Dictionary<string, string> Metadata(byte[] file)
    {
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        using var doc = JsonDocument.Parse(file.AsMemory(8, n));
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (doc.RootElement.TryGetProperty("__metadata__", out var m))
        {
            foreach (var p in m.EnumerateObject())
            {
                result[p.Name] = p.Value.GetString() ?? "";
            }
        }

        return result;
    }

    /// <summary>
    /// Rewrites a file tensor by tensor, in header order: each is kept, replaced by what <paramref name="map"/> returns
    /// (another name, dtype or bytes), or dropped where it returns null; <c>__metadata__</c> is kept. The data is laid out
    /// anew, back to back.
    /// </summary>
    public static void Rewrite(string path, Func<Tensor, Tensor?> map)
    {
        var file = File.ReadAllBytes(path);
        var metadata = Metadata(file);
        var kept = Read(file).Values.Select(map).OfType<Tensor>();
        File.WriteAllBytes(path, Of([.. kept.Select(t => (t.Name, t.DType, t.Shape.Select(d => checked((int)d)).ToArray(), t.Bytes))], metadata.Count > 0 ? metadata : null));
    }

    /// <summary>A float32 tensor as bfloat16 (round to nearest even), name and shape kept.</summary>
    public static Tensor ToBF16(Tensor tensor)
    {
        var values = tensor.F32;
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            uint u = BitConverter.SingleToUInt32Bits(values[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16));
        }

        return tensor with { DType = "BF16", Bytes = bytes };
    }
}
