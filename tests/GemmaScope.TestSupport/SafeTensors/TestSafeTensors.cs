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
public static partial class TestSafeTensors
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
        var header = new StringBuilder("{");
        if (metadata is not null)
        {
            header.Append("\"__metadata__\":").Append(JsonSerializer.Serialize(metadata)).Append(',');
        }

        var data = new MemoryStream();
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            long begin = data.Length;
            data.Write(bytes);
            header.Append(CultureInfo.InvariantCulture, $"{JsonSerializer.Serialize(name)}:{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{begin},{data.Length}]}},");
        }

        if (header[^1] == ',')
        {
            header.Length--;
        }

        return Build(header.Append('}').ToString(), data.ToArray());
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
}
