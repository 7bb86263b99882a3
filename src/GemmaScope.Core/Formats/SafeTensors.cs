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
        var error = file.Error;
        if (file.Length < 8)
        {
            throw error(path, null, "not a safetensors file: shorter than its 8-byte header length", ">= 8 bytes", $"{file.Length} bytes");
        }

        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file.Slice(0, 8));
        if (n > 100_000_000 || (long)n > file.Length - 8)
        {
            throw error(path, null, "safetensors header length runs past the end of the file", $"<= {file.Length - 8}", n.ToString());
        }

        long dataStart = 8 + (long)n;
        long dataLength = file.Length - dataStart;
        var tensors = new Dictionary<string, RawTensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        // The reference implementation reads the header as UTF-8 text (str::from_utf8) before parsing it.
        var headerBytes = file.Slice(8, (long)n);
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
        {
            int bad = FirstInvalidUtf8(headerBytes);
            throw error(path, null, "safetensors header is not valid UTF-8", null, $"invalid byte at header offset {bad}");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray());
        }
        catch (JsonException e)
        {
            throw error(path, null, "safetensors header is not valid JSON", null, e.Message, e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw error(path, null, "safetensors header is not a JSON object");
            }

            var spans = new List<(long Begin, long End, string Name)>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    // A map of strings to strings, as the reference implementation requires.
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw error(path, null, "safetensors __metadata__ is not an object of strings", "an object", prop.Value.ValueKind.ToString());
                    }

                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (metadata.ContainsKey(m.Name))
                        {
                            throw error(path, null, $"safetensors __metadata__ names {NpyHeader.Quote(m.Name)} twice");
                        }

                        if (m.Value.ValueKind != JsonValueKind.String)
                        {
                            throw error(path, null, $"safetensors __metadata__ value {NpyHeader.Quote(m.Name)} is not a string", "a string", m.Value.ValueKind.ToString());
                        }

                        metadata[m.Name] = m.Value.GetString()!;
                    }

                    continue;
                }

                var t = ParseEntry(path, error, prop, dataLength, out long begin, out long end, file.Pointer + dataStart);
                spans.Add((begin, end, prop.Name));
                if (!tensors.TryAdd(prop.Name, t))
                {
                    throw error(path, prop.Name, "the header names this tensor twice");
                }
            }

            // As the reference implementation: sorted by offsets, each tensor starts where the previous ended (no holes,
            // no overlap), and the last ends at the end of the file (no unindexed bytes).
            spans.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long expected = 0;
            foreach (var (begin, end, name) in spans)
            {
                if (begin != expected)
                {
                    throw error(path, name, begin < expected ? "safetensors data_offsets overlap another tensor" : "safetensors data has a hole before this tensor (bytes no tensor indexes)",
                        $"begin = {expected}", begin.ToString());
                }

                expected = end;
            }

            if (expected != dataLength)
            {
                throw error(path, null, "safetensors file has bytes after its last tensor that no tensor indexes", $"{expected} data bytes", $"{dataLength} data bytes");
            }
        }

        return (tensors, metadata);
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> s)
    {
        int lo = 0, hi = s.Length;

        // Largest valid prefix by bisection; a prefix cut inside a sequence reads as invalid too, so this is approximate
        // by at most 3 bytes, which is enough to point at the spot.
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (System.Text.Unicode.Utf8.IsValid(s[..mid]))
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo;
    }

    private static unsafe RawTensor ParseEntry(string path, FormatError error, JsonProperty prop, long dataLength, out long begin, out long end, byte* data)
    {
        var name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object
            || !v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
        {
            throw error(path, name, "safetensors entry lacks dtype, shape or data_offsets", "{dtype, shape, data_offsets:[begin,end]}", NpyHeader.Quote(v.GetRawText()));
        }

        // JsonElement lookups take the last of repeated keys; the reference implementation refuses them.
        int fields = 0;
        foreach (var f in v.EnumerateObject())
        {
            if (f.NameEquals("dtype") || f.NameEquals("shape") || f.NameEquals("data_offsets"))
            {
                fields++;
            }
        }

        if (fields != 3)
        {
            throw error(path, name, "safetensors entry repeats dtype, shape or data_offsets");
        }

        var dtype = dt.GetString() switch
        {
            "F32" => TensorDType.Float32,
            "F16" => TensorDType.Float16,
            "BF16" => TensorDType.BFloat16,
            "F64" => TensorDType.Float64,
            var other => throw error(path, name, "unsupported safetensors dtype", "F32, F16, BF16 or F64", NpyHeader.Quote(other!)),
        };
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out shape[i]) || shape[i] < 0)
            {
                throw error(path, name, "bad dimension in shape", "a non-negative integer", NpyHeader.Quote(d.GetRawText()));
            }

            i++;
        }

        begin = end = 0;
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out begin) || !off[1].TryGetInt64(out end) || begin < 0 || end < begin)
        {
            throw error(path, name, "bad data_offsets", "[begin, end] with 0 <= begin <= end", NpyHeader.Quote(off.GetRawText()));
        }

        if (end > dataLength)
        {
            throw error(path, name, "data_offsets run past the end of the file (truncated file or lying header)", $"end <= {dataLength}", end.ToString());
        }

        var t = new RawTensor { File = path, Name = name, DType = dtype, Shape = shape, Data = data + begin, Error = error };
        if (t.ByteCount != end - begin)
        {
            throw error(path, name, "data_offsets disagree with shape and dtype", $"{t.ByteCount} bytes for {t.ShapeText} {dt.GetString()}", $"{end - begin} bytes");
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
