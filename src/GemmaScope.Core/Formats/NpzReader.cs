using System.Buffers.Binary;
using System.IO.Compression;

namespace GemmaScope.Formats;

/// <summary>
/// Reads the arrays of a numpy .npz archive (what <c>np.savez</c> writes, as Gemma Scope's params.npz).
/// A zip: the end-of-central-directory record (zip64 when numpy forces it), a central directory entry per member with
/// zip64 extra fields (0x0001) where sizes or offsets overflow 32 bits, a local header before each member's data.
/// Stored members are used in place from the memory map; deflated ones (np.savez_compressed) are inflated into memory.
/// </summary>
internal static unsafe class NpzReader
{
    private const uint LocalHeaderSig = 0x04034b50;
    private const uint CentralSig = 0x02014b50;
    private const uint EocdSig = 0x06054b50;
    private const uint Zip64EocdSig = 0x06064b50;
    private const uint Zip64LocatorSig = 0x07064b50;

    public static bool LooksLikeZip(MappedFile f) =>
        f.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(f.Slice(0, 4)) == LocalHeaderSig;

    public static Dictionary<string, RawTensor> ReadAll(MappedFile file, bool uint16IsBFloat16)
    {
        var path = file.Path;
        var (cdOffset, cdSize, entries) = FindCentralDirectory(file);
        var cd = file.Slice(cdOffset, cdSize, "zip central directory");
        var result = new Dictionary<string, RawTensor>(StringComparer.Ordinal);
        int p = 0;
        for (long i = 0; i < entries; i++)
        {
            if (p + 46 > cd.Length || BinaryPrimitives.ReadUInt32LittleEndian(cd[p..]) != CentralSig)
            {
                throw new SaeFormatException(path, null, "corrupt zip central directory entry", "signature 0x02014b50", $"entry {i} at offset {cdOffset + p}");
            }

            int flags = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 8)..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 10)..]);
            long compSize = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 20)..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 24)..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 28)..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 30)..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 32)..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 42)..]);
            if (p + 46 + nameLen + extraLen + commentLen > cd.Length)
            {
                throw new SaeFormatException(path, null, "zip central directory entry runs past the directory", null, $"entry {i}");
            }

            var name = System.Text.Encoding.UTF8.GetString(cd.Slice(p + 46, nameLen));
            ReadZip64Extra(cd.Slice(p + 46 + nameLen, extraLen), ref size, ref compSize, ref localOffset);
            if (size < 0 || compSize < 0 || localOffset < 0)
            {
                throw new SaeFormatException(path, name, "zip64 sizes or offset out of range", "values below 2^63", $"size {(ulong)size}, compressed {(ulong)compSize}, offset {(ulong)localOffset}");
            }
            p += 46 + nameLen + extraLen + commentLen;

            if (!name.EndsWith(".npy", StringComparison.Ordinal))
            {
                continue;
            }

            var arrayName = name[..^4];
            if ((flags & 1) != 0)
            {
                throw new SaeFormatException(path, arrayName, "encrypted zip members are not supported");
            }

            var lh = file.Slice(localOffset, 30, name);
            if (BinaryPrimitives.ReadUInt32LittleEndian(lh) != LocalHeaderSig)
            {
                throw new SaeFormatException(path, arrayName, "corrupt zip local header", "signature 0x04034b50", $"offset {localOffset}");
            }

            long dataOffset = localOffset + 30 + BinaryPrimitives.ReadUInt16LittleEndian(lh[26..]) + BinaryPrimitives.ReadUInt16LittleEndian(lh[28..]);
            file.CheckRange(dataOffset, compSize, name);

            byte* data;
            byte[]? owned = null;
            long available;
            switch (method)
            {
                case 0:
                    if (compSize != size)
                    {
                        throw new SaeFormatException(path, arrayName, "stored zip member has different compressed and uncompressed sizes", $"{size}", $"{compSize}");
                    }

                    data = file.Pointer + dataOffset;
                    available = size;
                    break;
                case 8:
                    owned = Inflate(file, dataOffset, compSize, size, arrayName);
                    data = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(owned));
                    available = owned.Length;
                    break;
                default:
                    throw new SaeFormatException(path, arrayName, "unsupported zip compression method", "0 (stored) or 8 (deflate)", method.ToString());
            }

            var headerBytes = new ReadOnlySpan<byte>(data, (int)Math.Min(available, 1 << 20));
            var header = NpyHeader.Parse(headerBytes, path, arrayName);
            var (dtype, big) = NpyHeader.ParseDescr(header.Descr, uint16IsBFloat16, path, arrayName);
            var t = new RawTensor
            {
                File = path,
                Name = arrayName,
                DType = dtype,
                BigEndian = big,
                FortranOrder = header.FortranOrder && header.Shape.Length > 1,
                Shape = header.Shape,
                Data = data + header.DataOffset,
                Pinned = owned,
            };
            long need = header.DataOffset + t.ByteCount;
            if (need > available)
            {
                throw new SaeFormatException(path, arrayName, "array data is truncated", $"{t.ByteCount} bytes for {t.ShapeText} {t.DTypeText}", $"{available - header.DataOffset} bytes");
            }

            if (need < available)
            {
                throw new SaeFormatException(path, arrayName, "array member has trailing bytes after its data (header and size disagree)", $"{need} bytes", $"{available} bytes");
            }

            if (!result.TryAdd(arrayName, t))
            {
                throw new SaeFormatException(path, arrayName, "the archive holds this array twice");
            }
        }

        return result;
    }

    private static byte[] Inflate(MappedFile file, long offset, long compSize, long size, string name)
    {
        // Deflate expands at most 1032:1; a larger claim is a lie that would make us allocate for nothing.
        if (size > Array.MaxLength || size > (compSize * 1032) + 1024)
        {
            throw new SaeFormatException(file.Path, name, "deflated member too large to inflate in memory, or larger than its compressed bytes can hold",
                $"<= min({Array.MaxLength}, 1032 × {compSize}) bytes", $"{size} bytes");
        }

        var buffer = GC.AllocateUninitializedArray<byte>((int)size, pinned: true);
        using var raw = new UnmanagedMemoryStream(file.Pointer + offset, compSize);
        using var inflater = new DeflateStream(raw, CompressionMode.Decompress);
        try
        {
            inflater.ReadExactly(buffer);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            throw new SaeFormatException(file.Path, name, "deflated zip member is corrupt or truncated", $"{size} bytes", null, e);
        }

        return buffer;
    }

    private static void ReadZip64Extra(ReadOnlySpan<byte> extra, ref long size, ref long compSize, ref long offset)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            var body = extra.Slice(4, Math.Min(len, extra.Length - 4));
            if (id == 0x0001)
            {
                // Only the fields that overflow in the fixed header are present, in this order.
                int q = 0;
                if (size == 0xFFFFFFFF && q + 8 <= body.Length)
                {
                    size = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[q..]);
                    q += 8;
                }

                if (compSize == 0xFFFFFFFF && q + 8 <= body.Length)
                {
                    compSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[q..]);
                    q += 8;
                }

                if (offset == 0xFFFFFFFF && q + 8 <= body.Length)
                {
                    offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[q..]);
                }
            }

            extra = extra[Math.Min(extra.Length, 4 + len)..];
        }
    }

    private static (long Offset, long Size, long Entries) FindCentralDirectory(MappedFile file)
    {
        var path = file.Path;
        if (file.Length < 22)
        {
            throw new SaeFormatException(path, null, "not a zip archive (too short for an end-of-central-directory record)", ">= 22 bytes", $"{file.Length} bytes");
        }

        long searchFrom = Math.Max(0, file.Length - 22 - 65535);
        var tail = file.Slice(searchFrom, file.Length - searchFrom);
        int eocd = -1;
        for (int i = tail.Length - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[i..]) == EocdSig)
            {
                eocd = i;
                break;
            }
        }

        if (eocd < 0)
        {
            throw new SaeFormatException(path, null, "not a complete zip archive: no end-of-central-directory record (truncated download?)");
        }

        var e = tail[eocd..];
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long eocdAbs = searchFrom + eocd;
        if (entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            if (eocdAbs < 20)
            {
                throw new SaeFormatException(path, null, "zip64 locator missing before end-of-central-directory record");
            }

            var loc = file.Slice(eocdAbs - 20, 20, "zip64 locator");
            if (BinaryPrimitives.ReadUInt32LittleEndian(loc) != Zip64LocatorSig)
            {
                throw new SaeFormatException(path, null, "zip64 locator missing or corrupt", "signature 0x07064b50", null);
            }

            long z64 = (long)BinaryPrimitives.ReadUInt64LittleEndian(loc[8..]);
            var rec = file.Slice(z64, 56, "zip64 end-of-central-directory record");
            if (BinaryPrimitives.ReadUInt32LittleEndian(rec) != Zip64EocdSig)
            {
                throw new SaeFormatException(path, null, "zip64 end-of-central-directory record corrupt", "signature 0x06064b50", null);
            }

            entries = (long)BinaryPrimitives.ReadUInt64LittleEndian(rec[32..]);
            cdSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(rec[40..]);
            cdOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(rec[48..]);
        }

        file.CheckRange(cdOffset, cdSize, "zip central directory");
        return (cdOffset, cdSize, entries);
    }
}
