using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace GemmaScope.Formats;

/// <summary>
/// Reads the arrays of a numpy .npz archive (what <c>np.savez</c> writes, as Gemma Scope's params.npz).
/// A zip: the end-of-central-directory record (zip64 when numpy forces it), a central directory entry per member with
/// zip64 extra fields (0x0001) where sizes or offsets overflow 32 bits, a local header before each member's data.
/// <para>
/// The whole structure is checked before any array is read: the central directory holds exactly the entries and bytes
/// the end record declares and ends where the end records begin; every local header carries its central entry's name
/// and method; no two members' bytes overlap; names (less ".npy") are unique. Only the arrays asked for are parsed.
/// Stored members are used in place from the memory map and not checksummed (that would read every page of a 300 MB
/// file that a structure-only load leaves cold, and double a full load's time; downloads are verified by their hash);
/// deflated ones (np.savez_compressed) are inflated on first use, after their .npy header agreed with the declared size,
/// and their CRC-32 is checked as they are inflated.
/// </para>
/// </summary>
internal static unsafe class NpzReader
{
    /// <summary>The arrays a JumpReLU SAE reads (SAELens also accepts lower-case w_enc / w_dec); transcoders add affine_skip_connection.</summary>
    public static readonly IReadOnlySet<string> SaeArrays = new HashSet<string>(StringComparer.Ordinal)
    {
        "W_enc", "w_enc", "W_dec", "w_dec", "b_enc", "b_dec", "threshold", "affine_skip_connection",
    };

    private const uint LocalHeaderSig = 0x04034b50;
    private const uint CentralSig = 0x02014b50;
    private const uint EocdSig = 0x06054b50;
    private const uint Zip64EocdSig = 0x06064b50;
    private const uint Zip64LocatorSig = 0x07064b50;

    /// <summary>Deflate's largest expansion: a longer claimed size cannot come from this many compressed bytes.</summary>
    private const long MaxDeflateRatio = 1032;

    private sealed record Member(string Name, int Method, uint Crc, long CompSize, long Size, long LocalOffset, long DataOffset);

    public static bool LooksLikeZip(MappedFile f) =>
        f.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(f.Slice(0, 4)) == LocalHeaderSig;

    /// <summary>
    /// The arrays named in <paramref name="wanted"/> (all when null), keyed by member name less ".npy", each with a
    /// <see cref="RawTensor.Loader"/> that inflates or checksums it on first use; inflated buffers go to <paramref name="owned"/>.
    /// </summary>
    public static Dictionary<string, RawTensor> ReadAll(MappedFile file, bool uint16IsBFloat16, IReadOnlySet<string>? wanted, List<IDisposable> owned)
    {
        var path = file.Path;
        var members = ReadDirectory(file);
        var result = new Dictionary<string, RawTensor>(StringComparer.Ordinal);
        foreach (var m in members)
        {
            var key = m.Name.EndsWith(".npy", StringComparison.Ordinal) ? m.Name[..^4] : m.Name;
            if (wanted is null ? m.Name.Length == key.Length : !wanted.Contains(key))
            {
                continue;
            }

            result.Add(key, Open(file, m, key, uint16IsBFloat16, owned));
        }

        return result;
    }

    private static RawTensor Open(MappedFile file, Member m, string arrayName, bool uint16IsBFloat16, List<IDisposable> owned)
    {
        var path = file.Path;
        NpyHeader header;
        if (m.Method == 0)
        {
            header = NpyHeader.Parse(file.Slice(m.DataOffset, Math.Min(m.Size, NpyHeader.MaxHeaderBytes), m.Name), path, arrayName);
        }
        else
        {
            // Inflate only the header's bytes now; the data waits until the SAE has checked the shape.
            var prefix = new byte[Math.Min(m.Size, NpyHeader.MaxHeaderBytes)];
            using (var inflater = Inflater(file, m))
            {
                int got = ReadInflated(inflater, prefix, file, m, arrayName);
                header = NpyHeader.Parse(prefix.AsSpan(0, got), path, arrayName);
            }
        }

        var (dtype, big) = NpyHeader.ParseDescr(header.Descr, uint16IsBFloat16, path, arrayName);
        var shape = header.Shape;
        var probe = new RawTensor { File = path, Name = arrayName, DType = dtype, Shape = shape, Data = null };
        long need = header.DataOffset + probe.ByteCount;
        if (need > m.Size)
        {
            throw new SaeFormatException(path, arrayName, "array data is truncated", $"{probe.ByteCount} bytes for {probe.ShapeText} {probe.DTypeText}", $"{m.Size - header.DataOffset} bytes");
        }

        if (need < m.Size)
        {
            throw new SaeFormatException(path, arrayName, "array member has trailing bytes after its data (header and size disagree)", $"{need} bytes", $"{m.Size} bytes");
        }

        int dataOffset = header.DataOffset;
        Func<nint> loader = m.Method == 0
            ? () => (nint)(file.Pointer + m.DataOffset + dataOffset)
            : () =>
            {
                var buffer = new NativeBuffer(m.Size);
                owned.Add(buffer);
                byte* p = (byte*)buffer.Pointer;
                using var inflater = Inflater(file, m);
                for (long at = 0; at < m.Size;)
                {
                    int chunk = (int)Math.Min(m.Size - at, 1 << 30);
                    int got = ReadInflated(inflater, new Span<byte>(p + at, chunk), file, m, arrayName);
                    if (got < chunk)
                    {
                        throw new SaeFormatException(path, arrayName, "deflated zip member is shorter than its declared size", $"{m.Size} bytes", $"{at + got} bytes");
                    }

                    at += got;
                }

                Span<byte> extra = stackalloc byte[1];
                if (ReadInflated(inflater, extra, file, m, arrayName) != 0)
                {
                    throw new SaeFormatException(path, arrayName, "deflated zip member is longer than its declared size", $"{m.Size} bytes", "more");
                }

                CheckCrc(file, m, arrayName, p);
                return (nint)(p + dataOffset);
            };

        return new RawTensor
        {
            File = path,
            Name = arrayName,
            DType = dtype,
            BigEndian = big,
            FortranOrder = header.FortranOrder && shape.Length > 1,
            Shape = shape,
            Loader = loader,
        };
    }

    private static void CheckCrc(MappedFile file, Member m, string arrayName, byte* p)
    {
        var crc = new Crc32();
        for (long at = 0; at < m.Size; at += 1 << 30)
        {
            crc.Append(new ReadOnlySpan<byte>(p + at, (int)Math.Min(m.Size - at, 1 << 30)));
        }

        uint actual = crc.GetCurrentHashAsUInt32();
        if (actual != m.Crc)
        {
            throw new SaeFormatException(file.Path, arrayName, "zip member's CRC-32 does not match its bytes (corrupt file)", $"0x{m.Crc:X8}", $"0x{actual:X8}");
        }
    }

    private static DeflateStream Inflater(MappedFile file, Member m) =>
        new(new UnmanagedMemoryStream(file.Pointer + m.DataOffset, m.CompSize), CompressionMode.Decompress);

    /// <summary>Fills <paramref name="into"/> as far as the stream goes; corrupt deflate data is a format error.</summary>
    private static int ReadInflated(DeflateStream inflater, Span<byte> into, MappedFile file, Member m, string arrayName)
    {
        try
        {
            return inflater.ReadAtLeast(into, into.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw new SaeFormatException(file.Path, arrayName, "deflated zip member is corrupt", $"{m.Size} bytes of deflate data", null, e);
        }
    }

    /// <summary>Every member of the central directory, checked against the end record, the local headers and each other.</summary>
    private static List<Member> ReadDirectory(MappedFile file)
    {
        var path = file.Path;
        var (cdOffset, cdSize, entries) = FindCentralDirectory(file);
        var cd = file.Slice(cdOffset, cdSize, "zip central directory");
        if (entries > cdSize / 46)
        {
            throw new SaeFormatException(path, null, "zip end record declares more entries than its central directory can hold", $"<= {cdSize / 46} entries of >= 46 bytes", entries.ToString());
        }

        var members = new List<Member>((int)entries);
        var names = new HashSet<string>(StringComparer.Ordinal);
        int p = 0;
        for (int i = 0; i < entries; i++)
        {
            if (p + 46 > cd.Length || BinaryPrimitives.ReadUInt32LittleEndian(cd[p..]) != CentralSig)
            {
                throw new SaeFormatException(path, null, "corrupt zip central directory entry", "signature 0x02014b50", $"entry {i} at offset {cdOffset + p}");
            }

            int flags = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 8)..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 10)..]);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 16)..]);
            long compSize = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 20)..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 24)..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 28)..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 30)..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 32)..]);
            int disk = BinaryPrimitives.ReadUInt16LittleEndian(cd[(p + 34)..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(cd[(p + 42)..]);
            if (p + 46 + nameLen + extraLen + commentLen > cd.Length)
            {
                throw new SaeFormatException(path, null, "zip central directory entry runs past the directory", null, $"entry {i}");
            }

            var nameBytes = cd.Slice(p + 46, nameLen);
            var name = Encoding.UTF8.GetString(nameBytes);

            // numpy keys arrays by the member name less ".npy": "W_enc" and "W_enc.npy" would both be W_enc.
            var key = name.EndsWith(".npy", StringComparison.Ordinal) ? name[..^4] : name;
            ReadZip64Extra(path, key, cd.Slice(p + 46 + nameLen, extraLen), ref size, ref compSize, ref localOffset, ref disk);
            p += 46 + nameLen + extraLen + commentLen;
            if (size < 0 || compSize < 0 || localOffset < 0)
            {
                throw new SaeFormatException(path, key, "zip64 sizes or offset out of range", "values below 2^63", $"size {(ulong)size}, compressed {(ulong)compSize}, offset {(ulong)localOffset}");
            }

            if (disk != 0)
            {
                throw new SaeFormatException(path, key, "multi-disk zip archives are not supported", "disk 0", disk.ToString());
            }

            if ((flags & 1) != 0)
            {
                throw new SaeFormatException(path, key, "encrypted zip members are not supported");
            }

            if (method == 0 && compSize != size)
            {
                throw new SaeFormatException(path, key, "stored zip member has different compressed and uncompressed sizes", $"{size}", $"{compSize}");
            }

            if (method == 8 && (size > compSize * MaxDeflateRatio + 1024))
            {
                throw new SaeFormatException(path, key, "deflated member claims more bytes than its compressed bytes can hold",
                    $"<= {MaxDeflateRatio} × {compSize} bytes", $"{size} bytes");
            }

            if (method is not (0 or 8))
            {
                throw new SaeFormatException(path, key, "unsupported zip compression method", "0 (stored) or 8 (deflate)", method.ToString());
            }

            if (!names.Add(key))
            {
                throw new SaeFormatException(path, key, "the archive holds this array twice");
            }

            var lh = file.Slice(localOffset, 30, key);
            if (BinaryPrimitives.ReadUInt32LittleEndian(lh) != LocalHeaderSig)
            {
                throw new SaeFormatException(path, key, "corrupt zip local header", "signature 0x04034b50", $"offset {localOffset}");
            }

            int localMethod = BinaryPrimitives.ReadUInt16LittleEndian(lh[8..]);
            int localNameLen = BinaryPrimitives.ReadUInt16LittleEndian(lh[26..]);
            int localExtraLen = BinaryPrimitives.ReadUInt16LittleEndian(lh[28..]);
            var localName = file.Slice(localOffset + 30, localNameLen, key);
            if (!localName.SequenceEqual(nameBytes))
            {
                throw new SaeFormatException(path, key, "zip local header names a different member than the central directory",
                    NpyHeader.Quote(name), NpyHeader.Quote(Encoding.UTF8.GetString(localName)));
            }

            if (localMethod != method)
            {
                throw new SaeFormatException(path, key, "zip local header and central directory disagree on the compression method", method.ToString(), localMethod.ToString());
            }

            long dataOffset = localOffset + 30 + localNameLen + localExtraLen;
            file.CheckRange(dataOffset, compSize, key);
            members.Add(new Member(name, method, crc, compSize, size, localOffset, dataOffset));
        }

        if (p != cd.Length)
        {
            throw new SaeFormatException(path, null, "zip central directory holds more bytes than the entries the end record declares",
                $"{entries} entries in {cdSize} bytes", $"{cd.Length - p} bytes left over");
        }

        // Members' bytes (local header through data) must not overlap each other or the central directory.
        var byStart = members.OrderBy(x => x.LocalOffset).ToList();
        for (int i = 0; i < byStart.Count; i++)
        {
            long end = byStart[i].DataOffset + byStart[i].CompSize;
            long limit = i + 1 < byStart.Count ? byStart[i + 1].LocalOffset : cdOffset;
            if (end > limit)
            {
                throw new SaeFormatException(path, byStart[i].Name.EndsWith(".npy", StringComparison.Ordinal) ? byStart[i].Name[..^4] : byStart[i].Name, "zip member's bytes overlap another member or the central directory",
                    $"end <= {limit}", $"bytes [{byStart[i].LocalOffset}, {end})");
            }
        }

        return members;
    }

    private static void ReadZip64Extra(string path, string name, ReadOnlySpan<byte> extra, ref long size, ref long compSize, ref long offset, ref int disk)
    {
        bool needSize = size == 0xFFFFFFFF, needComp = compSize == 0xFFFFFFFF, needOffset = offset == 0xFFFFFFFF, needDisk = disk == 0xFFFF;
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (4 + len > extra.Length)
            {
                throw new SaeFormatException(path, name, "zip extra field runs past its entry", $"<= {extra.Length - 4} bytes", $"{len} bytes");
            }

            var body = extra.Slice(4, len);
            if (id == 0x0001)
            {
                // Only the fields that overflow in the fixed header are present, in this order.
                int q = 0;
                if (needSize && q + 8 <= body.Length)
                {
                    size = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[q..]);
                    q += 8;
                    needSize = false;
                }

                if (needComp && q + 8 <= body.Length)
                {
                    compSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[q..]);
                    q += 8;
                    needComp = false;
                }

                if (needOffset && q + 8 <= body.Length)
                {
                    offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(body[q..]);
                    q += 8;
                    needOffset = false;
                }

                if (needDisk && q + 4 <= body.Length)
                {
                    disk = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(body[q..]), int.MaxValue);
                    needDisk = false;
                }
            }

            extra = extra[(4 + len)..];
        }

        if (needSize || needComp || needOffset || needDisk)
        {
            throw new SaeFormatException(path, name, "zip entry marks a size or offset as zip64 but has no zip64 extra field holding it");
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
            // The record ends the file: its comment runs exactly to the end.
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[i..]) == EocdSig && i + 22 + BinaryPrimitives.ReadUInt16LittleEndian(tail[(i + 20)..]) == tail.Length)
            {
                eocd = i;
                break;
            }
        }

        if (eocd < 0)
        {
            throw new SaeFormatException(path, null, "not a complete zip archive: no end-of-central-directory record at its end (truncated download?)");
        }

        var e = tail[eocd..];
        long disk = BinaryPrimitives.ReadUInt16LittleEndian(e[4..]);
        long cdDisk = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
        long diskEntries = BinaryPrimitives.ReadUInt16LittleEndian(e[8..]);
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long eocdAbs = searchFrom + eocd;
        long cdMustEnd = eocdAbs;
        if (entries == 0xFFFF || diskEntries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF || disk == 0xFFFF || cdDisk == 0xFFFF)
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

            // The record (12 bytes plus its declared size) runs up to the locator.
            ulong recSize = BinaryPrimitives.ReadUInt64LittleEndian(rec[4..]);
            if (recSize < 44 || recSize != (ulong)(eocdAbs - 20 - z64 - 12))
            {
                throw new SaeFormatException(path, null, "zip64 end-of-central-directory record's size disagrees with its position", $"{eocdAbs - 20 - z64 - 12}", recSize.ToString());
            }

            disk = BinaryPrimitives.ReadUInt32LittleEndian(rec[16..]);
            cdDisk = BinaryPrimitives.ReadUInt32LittleEndian(rec[20..]);
            diskEntries = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(rec[24..]), long.MaxValue);
            entries = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(rec[32..]), long.MaxValue);
            cdSize = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(rec[40..]), long.MaxValue);
            cdOffset = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(rec[48..]), long.MaxValue);
            cdMustEnd = z64;
        }

        if (disk != 0 || cdDisk != 0 || diskEntries != entries)
        {
            throw new SaeFormatException(path, null, "multi-disk zip archives are not supported", $"disk 0 holding all {entries} entries", $"disk {disk}, directory on disk {cdDisk}, {diskEntries} entries on this disk");
        }

        file.CheckRange(cdOffset, cdSize, "zip central directory");

        // Nothing may sit between the directory and the end records: no unindexed entry after the declared ones.
        if (cdOffset + cdSize != cdMustEnd)
        {
            throw new SaeFormatException(path, null, "zip central directory does not end where the end records begin",
                $"offset + size = {cdMustEnd}", $"{cdOffset} + {cdSize} = {cdOffset + cdSize}");
        }

        return (cdOffset, cdSize, entries);
    }
}
