using System.Buffers.Binary;

using System.Text.Json;

namespace GemmaScope.Formats;

/// <summary>
/// safetensors: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>),
/// then the raw little-endian data; offsets are relative to the end of the header.
/// </summary>
public static class SafeTensors
{
    private static ReadOnlySpan<byte> Sig => "{"u8;

    internal static bool LooksLikeSafeTensors(MappedFile f)
    {
        if (f.Length < 10)
        {
            return false;
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(f.Slice(0, 8));
        return n >= 2 && n <= (ulong)(f.Length - 8) && f.Slice(8, 1).SequenceEqual(Sig);
    }

    internal static unsafe (Dictionary<string, RawTensor> Tensors, Dictionary<string, string> Metadata) ReadAll(MappedFile file)
    {
        var path = file.Path;
        if (file.Length < 8)
        {
            throw new SaeFormatException(path, null, "not a safetensors file: shorter than its 8-byte header length", ">= 8 bytes", $"{file.Length} bytes");
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file.Slice(0, 8));
        if (n > 100_000_000 || (long)n > file.Length - 8)
        {
            throw new SaeFormatException(path, null, "safetensors header length runs past the end of the file", $"<= {file.Length - 8}", n.ToString());
        }

        long dataStart = 8 + (long)n;
        long dataLength = file.Length - dataStart;
        var tensors = new Dictionary<string, RawTensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(file.Slice(8, (long)n).ToArray());
        }
        catch (JsonException e)
        {
            throw new SaeFormatException(path, null, "safetensors header is not valid JSON", null, e.Message, e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new SaeFormatException(path, null, "safetensors header is not a JSON object");
            }

            var spans = new List<(long Begin, long End, string Name)>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var m in prop.Value.EnumerateObject())
                        {
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                        }
                    }

                    continue;
                }

                var t = ParseEntry(path, prop, dataLength, out long begin, out long end, file.Pointer + dataStart);
                spans.Add((begin, end, prop.Name));
                if (!tensors.TryAdd(prop.Name, t))
                {
                    throw new SaeFormatException(path, prop.Name, "the header names this tensor twice");
                }
            }

            spans.Sort((a, b) => a.Begin.CompareTo(b.Begin));
            for (int i = 1; i < spans.Count; i++)
            {
                if (spans[i].Begin < spans[i - 1].End)
                {
                    throw new SaeFormatException(path, spans[i].Name, "safetensors data_offsets overlap another tensor", $"begin >= {spans[i - 1].End} ('{spans[i - 1].Name}')", spans[i].Begin.ToString());
                }
            }
        }

        return (tensors, metadata);
    }

    private static unsafe RawTensor ParseEntry(string path, JsonProperty prop, long dataLength, out long begin, out long end, byte* data)
    {
        var name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
        {
            throw new SaeFormatException(path, name, "safetensors entry lacks dtype, shape or data_offsets", "{dtype, shape, data_offsets:[begin,end]}", v.GetRawText());
        }

        var dtype = dt.GetString() switch
        {
            "F32" => TensorDType.Float32,
            "F16" => TensorDType.Float16,
            "BF16" => TensorDType.BFloat16,
            "F64" => TensorDType.Float64,
            var other => throw new SaeFormatException(path, name, "unsupported safetensors dtype", "F32, F16, BF16 or F64", other),
        };
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (!d.TryGetInt64(out shape[i]) || shape[i] < 0)
            {
                throw new SaeFormatException(path, name, "bad dimension in shape", "a non-negative integer", d.GetRawText());
            }

            i++;
        }

        if (!off[0].TryGetInt64(out begin) || !off[1].TryGetInt64(out end) || begin < 0 || end < begin)
        {
            throw new SaeFormatException(path, name, "bad data_offsets", "[begin, end] with 0 <= begin <= end", off.GetRawText());
        }

        if (end > dataLength)
        {
            throw new SaeFormatException(path, name, "data_offsets run past the end of the file (truncated file or lying header)", $"end <= {dataLength}", end.ToString());
        }

        var t = new RawTensor { File = path, Name = name, DType = dtype, Shape = shape, Data = data + begin };
        if (t.ByteCount != end - begin)
        {
            throw new SaeFormatException(path, name, "data_offsets disagree with shape and dtype", $"{t.ByteCount} bytes for {t.ShapeText} {dt.GetString()}", $"{end - begin} bytes");
        }

        return t;
    }

    /// <summary>One tensor to write: name, dtype, shape and its raw little-endian bytes.</summary>
    /// <param name="Name">Tensor name.</param>
    /// <param name="DType">Element type of <paramref name="Data"/>.</param>
    /// <param name="Shape">Dimensions.</param>
    /// <param name="Data">Little-endian element bytes, exactly product(shape) × element size.</param>
    public readonly record struct TensorToWrite(string Name, TensorDType DType, long[] Shape, ReadOnlyMemory<byte> Data);

    /// <summary>Writes a safetensors file: header padded with spaces to a multiple of 8 bytes, tensors in the order given.</summary>
    /// <param name="path">Destination; written to a temporary file first, then renamed, so a failure leaves no partial file.</param>
    /// <param name="tensors">Tensors to write.</param>
    /// <param name="metadata">String pairs for <c>__metadata__</c>, or null.</param>
    public static void Write(string path, IReadOnlyList<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
            }

            long offset = 0;
            foreach (var t in tensors)
            {
                long count = 1;
                foreach (var d in t.Shape)
                {
                    count = checked(count * d);
                }

                if (count * t.DType.Size() != t.Data.Length)
                {
                    throw new ArgumentException($"{path}, tensor '{t.Name}': data has {t.Data.Length} bytes, shape [{string.Join(", ", t.Shape)}] needs {count * t.DType.Size()}", nameof(tensors));
                }

                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType switch
                {
                    TensorDType.Float32 => "F32",
                    TensorDType.Float16 => "F16",
                    TensorDType.BFloat16 => "BF16",
                    _ => "F64",
                });
                w.WriteStartArray("shape");
                foreach (var d in t.Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Data.Length;
            }

            w.WriteEndObject();
        }

        while (header.Length % 8 != 0)
        {
            header.WriteByte((byte)' ');
        }

        var full = Path.GetFullPath(path);
        var tmp = full + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
                fs.Write(len);
                header.Position = 0;
                header.CopyTo(fs);
                foreach (var t in tensors)
                {
                    fs.Write(t.Data.Span);
                }
            }

            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp))
            {
                File.Delete(tmp);
            }
        }
    }

}
