using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using GemmaScope.Tests.Support;

namespace GemmaScope.Tests.Formats;

/// <summary>
/// Builds the malformed and tricky weight files of issue 13 in code: each case is a valid small SAE with one defect.
/// The zip writer here is independent of the library's reader; every field it writes is explicit so that a case can
/// lie in exactly one place.
/// </summary>
internal static class FormatCorpus
{
    public const int DIn = 5, DSae = 7;

    public static float[] Seq(int n, float start) => [.. Enumerable.Range(0, n).Select(i => start + (i * 0.01f))];

    public static readonly float[] WEnc = Seq(DIn * DSae, 0.1f), WDec = Seq(DSae * DIn, -0.2f), BEnc = Seq(DSae, 0.3f), BDec = Seq(DIn, 0.4f), Threshold = Seq(DSae, 0.05f);

    public static List<(string Name, byte[] Data)> Members() =>
    [
        ("W_enc.npy", TestNpz.Npy(WEnc, [DIn, DSae])),
        ("W_dec.npy", TestNpz.Npy(WDec, [DSae, DIn])),
        ("b_enc.npy", TestNpz.Npy(BEnc, [DSae])),
        ("b_dec.npy", TestNpz.Npy(BDec, [DIn])),
        ("threshold.npy", TestNpz.Npy(Threshold, [DSae])),
    ];

    /// <summary>An npy 1.0 (or <paramref name="major"/>.<paramref name="minor"/>) file with the header text given verbatim.</summary>
    public static byte[] NpyWithHeader(string dict, ReadOnlySpan<byte> data, int major = 1, int minor = 0, bool pad = true)
    {
        int pre = major == 1 ? 10 : 12;
        int padLen = pad ? (64 - ((pre + dict.Length + 1) % 64)) % 64 : 0;
        var header = Encoding.Latin1.GetBytes(dict + new string(' ', padLen) + (pad ? "\n" : ""));
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, (byte)minor]);
        if (major == 1)
        {
            ms.Write(BitConverter.GetBytes((ushort)header.Length));
        }
        else
        {
            ms.Write(BitConverter.GetBytes((uint)header.Length));
        }

        ms.Write(header);
        ms.Write(data);
        return ms.ToArray();
    }

    public static byte[] F32(float[] a) => MemoryMarshal.AsBytes(a.AsSpan()).ToArray();

    /// <summary>One central directory entry as written (after any lie).</summary>
    public sealed record Entry(string Name, long LocalOffset, long Size, long CompSize, uint Crc, int Method);

    /// <summary>
    /// A zip written field by field: local records for <paramref name="locals"/> (name in the local header, bytes, method),
    /// then the central directory from <paramref name="entries"/> (defaults: one per local record), then zip64 end
    /// records declaring <paramref name="declaredEntries"/> entries and <paramref name="declaredCdSize"/> bytes (defaults: the truth).
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
            uint crc = System.IO.Hashing.Crc32Compat.Compute(data);
            byte[] stored = method == 8 ? Deflate(data) : data;
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
            w.Write((ulong)data.Length);
            w.Write((ulong)stored.Length);
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

        long cdSize = ms.Position - cdStart;
        long n = declaredEntries ?? list.Count;
        long declared = declaredCdSize?.Invoke(cdSize) ?? cdSize;
        TestNpz.WriteZip64End(w, n, declared, cdStart);
        return ms.ToArray();
    }

    public static byte[] Zip(IEnumerable<(string Name, byte[] Data)> members, int method = 0) =>
        Zip([.. members.Select(m => (m.Name, m.Data, method))]);

    public static byte[] Deflate(byte[] data)
    {
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            d.Write(data);
        }

        return ms.ToArray();
    }

    /// <summary>A safetensors file: header JSON as given (padded with spaces to 8 bytes), then the data bytes.</summary>
    public static byte[] SafeTensors(string headerJson, byte[] data) => SafeTensors(Encoding.UTF8.GetBytes(headerJson), data);

    public static byte[] SafeTensors(byte[] header, byte[] data)
    {
        int padded = (header.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        data.CopyTo(bytes, 8 + padded);
        return bytes;
    }

    /// <summary>The five tensors as a safetensors header (offsets optionally disturbed by <paramref name="gapAfter"/> bytes after b_enc) and data.</summary>
    public static (string Header, byte[] Data) SafeTensorsParts(int gapAfterBEnc = 0, string metadata = "{\"format\":\"pt\"}")
    {
        var parts = new (string Name, float[] Values, int[] Shape)[]
        {
            ("w_enc", WEnc, [DIn, DSae]), ("w_dec", WDec, [DSae, DIn]), ("b_enc", BEnc, [DSae]), ("b_dec", BDec, [DIn]), ("threshold", Threshold, [DSae]),
        };
        var sb = new StringBuilder("{\"__metadata__\":" + metadata);
        var data = new MemoryStream();
        foreach (var (name, values, shape) in parts)
        {
            long begin = data.Length;
            data.Write(F32(values));
            sb.Append($",\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{begin},{data.Length}]}}");
            if (name == "b_enc" && gapAfterBEnc > 0)
            {
                data.Write(new byte[gapAfterBEnc]);
            }
        }

        return (sb.Append('}').ToString(), data.ToArray());
    }

    /// <summary>Reads every weight of a loaded SAE and says whether it equals the originals bit for bit.</summary>
    public static unsafe bool HoldsOriginals(JumpReLUSae sae)
    {
        var w = sae.Weights;
        return w.DIn == DIn && w.DSae == DSae
            && new ReadOnlySpan<float>(w.WEnc, WEnc.Length).SequenceEqual(WEnc)
            && new ReadOnlySpan<float>(w.WDec, WDec.Length).SequenceEqual(WDec)
            && new ReadOnlySpan<float>(w.BEnc, BEnc.Length).SequenceEqual(BEnc)
            && new ReadOnlySpan<float>(w.BDec, BDec.Length).SequenceEqual(BDec)
            && new ReadOnlySpan<float>(w.Threshold, Threshold.Length).SequenceEqual(Threshold);
    }
}
