using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using GemmaScope.Core.Tests.Support;
using GemmaScope.Formats;
using static GemmaScope.Core.Tests.Formats.FormatCorpus;

namespace GemmaScope.Core.Tests.Formats;

/// <summary>
/// Issue 13's format cases, each a valid small SAE with one defect, generated in code. Every one ends in a
/// <see cref="SaeFormatException"/> naming the file, with a bounded message, or (where the file is valid) in a load
/// that equals an independent reading.
/// </summary>
public class FormatCorpusTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private SaeFormatException Refused(string name, byte[] bytes, string? contains = null, SaeLoadOptions? options = null) =>
        RefusedBy(p => JumpReLUSae.Load(p, options).Dispose(), name, bytes, contains);

    private SaeFormatException NpyRefused(string name, byte[] bytes, string? contains = null) => RefusedBy(p => Npy.ReadFloat32(p), name, bytes, contains);

    /// <summary>Writes the file and reads it with <paramref name="read"/>, which must refuse it naming the file, in under 1,000 characters.</summary>
    private SaeFormatException RefusedBy(Action<string> read, string name, byte[] bytes, string? contains)
    {
        var p = _dir.Write(name, bytes);
        var e = Assert.Throws<SaeFormatException>(() => read(p));
        Assert.Contains(p, e.Message);
        Assert.True(e.Message.Length < 1000, $"message of {e.Message.Length} characters");
        if (contains is not null)
        {
            Assert.Contains(contains, e.Message);
        }

        return e;
    }

    [Fact]
    public void CorpusBaseFilesLoad()
    {
        // Each writer below makes a valid file when it lies nowhere, so each failure is the one defect's.
        using (var sae = JumpReLUSae.Load(_dir.Write("ok.npz", TestNpz.Zip(Members()))))
        {
            Assert.True(HoldsOriginals(sae));
        }

        using (var sae = JumpReLUSae.Load(_dir.Write("okd.npz", TestNpz.Zip(Members(), method: 8))))
        {
            Assert.True(HoldsOriginals(sae));
        }

        using (var sae = JumpReLUSae.Load(_dir.Write("ok.safetensors", TestSafeTensors.F32(Tensors(), Pt))))
        {
            Assert.True(HoldsOriginals(sae));
        }
    }

    // ---- npz ----

    [Fact]
    public void Npz_DirectoryWithMoreEntriesThanDeclared_CannotHideASecondWEnc()
    {
        // A sixth entry, a second W_enc.npy; the end record declares five. Python's zipfile reads the directory by its
        // size and would see the sixth; a reader going by the count sees the first. Either way the file is ambiguous.
        var members = Members().Select(m => (m.Name, m.Data, 0)).ToList();
        members.Add(("W_enc.npy", TestNpz.Npy(Seq(DIn * DSae, 9f), [DIn, DSae]), 0));
        Refused("hidden.npz", TestNpz.Zip(members, declaredEntries: 5), "more bytes than the entries");

        // The same with the declared size shrunk to five entries: the sixth sits between directory and end records.
        Refused("hidden2.npz", TestNpz.Zip(members, declaredEntries: 5, declaredCdSize: size => size - 46 - 9 - 28), "does not end where the end records begin");
    }

    [Fact]
    public void Npz_LocalHeaderNamingADifferentMember()
    {
        // Local header says b_dec.npy, the directory says b_enc.npy (same length, so offsets stay right).
        var locals = Members().Select(m => (m.Name == "b_enc.npy" ? "b_dec.npy" : m.Name, m.Data, 0)).ToList();
        var e = Refused("localname.npz", TestNpz.Zip(locals, entries: list => [.. list.Select((x, i) => i == 2 ? x with { Name = "b_enc.npy" } : x)]), "different member");
        Assert.Equal("b_enc", e.Tensor);
    }

    [Fact]
    public void Npz_OverlappingMembers()
    {
        // "notes.bin" (not an array, so never parsed) holds, inside its data, a complete local record of threshold.npy;
        // the directory points threshold at it. Both members' bytes overlap.
        var inner = TestNpz.Zip([("threshold.npy", TestNpz.Npy(Threshold, [DSae]), 0)]);
        int innerRecordLength = 30 + 13 + 20 + TestNpz.Npy(Threshold, [DSae]).Length;
        var carrier = TestNpz.Npy("|u1", [innerRecordLength], inner.AsSpan(0, innerRecordLength));
        var locals = Members().Take(4).Select(m => (m.Name, m.Data, 0)).Append(("notes.bin", carrier, 0)).ToList();
        var bytes = TestNpz.Zip(locals, entries: list =>
        {
            var u = list[4];
            long innerOffset = u.LocalOffset + 30 + 9 + 20 + (carrier.Length - innerRecordLength);
            return [.. list, new TestNpz.Entry("threshold.npy", innerOffset, TestNpz.Npy(Threshold, [DSae]).Length, TestNpz.Npy(Threshold, [DSae]).Length, System.IO.Hashing.Crc32.HashToUInt32(TestNpz.Npy(Threshold, [DSae])), 0)];
        });
        Refused("overlap.npz", bytes, "overlap");
    }

    [Fact]
    public void Npz_DeflatedMemberWithWrongCrc()
    {
        var bytes = TestNpz.Zip([.. Members().Select(m => (m.Name, m.Data, 8))], entries: list => [.. list.Select(x => x.Name == "W_dec.npy" ? x with { Crc = x.Crc ^ 1 } : x)]);
        var e = Refused("crc.npz", bytes, "CRC-32");
        Assert.Equal("W_dec", e.Tensor);

        // Even with structure-only validation: inflating is where the check costs nothing extra.
        Refused("crc2.npz", bytes, "CRC-32", new SaeLoadOptions { Validation = SaeValidation.StructureOnly });
    }

    /// <summary>An npz whose extra member inflates to <paramref name="zeroBytes"/> of a valid float32 array.</summary>
    private static byte[] WithLargeDeflatedMember(string name, int zeroBytes, bool replace)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (n, data) in Members())
            {
                if (replace && n == name)
                {
                    continue;
                }

                using var s = zip.CreateEntry(n, CompressionLevel.Fastest).Open();
                s.Write(data);
            }

            using var big = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
            big.Write(TestNpz.Npy("<f4", [zeroBytes / 4], []));
            var zeros = new byte[1 << 20];
            for (int i = 0; i < zeroBytes; i += zeros.Length)
            {
                big.Write(zeros, 0, Math.Min(zeros.Length, zeroBytes - i));
            }
        }

        return ms.ToArray();
    }

    [Fact]
    public void Npz_UnusedDeflatedMemberIsNeverInflated()
    {
        var bytes = WithLargeDeflatedMember("unused.npy", 48 << 20, replace: false);
        Assert.True(bytes.Length < 1 << 20);
        var p = _dir.Write("unused.npz", bytes);
        using (JumpReLUSae.Load(p))
        {
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        using var sae = JumpReLUSae.Load(p);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes for a 48 MB member nobody reads");
        Assert.True(sae.CopiedBytes < 1 << 20, $"copied {sae.CopiedBytes} bytes");
        Assert.True(HoldsOriginals(sae));
    }

    [Fact]
    public void Npz_WantedDeflatedMemberOfTheWrongShapeFailsBeforeInflating()
    {
        // b_enc holds 12 M floats (48 MB inflated) where d_sae = 7: refused on its header, before inflating its data.
        var p = _dir.Write("bigbenc.npz", WithLargeDeflatedMember("b_enc.npy", 48 << 20, replace: true));
        Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(p));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(p));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal("b_enc", e.Tensor);
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes before refusing the shape");
    }

    // ---- npy headers ----

    private static readonly byte[] Three = TestNpz.F32([1f, 2f, 3f]);

    [Fact]
    public void Npy_TextAfterTheDict()
    {
        NpyRefused("after.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }x=1", Three), "after the dict");
        NpyRefused("after2.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }{'descr': '<f8'}", Three), "after the dict");

        // The same in an npz member.
        var m = Members();
        m[2] = ("b_enc.npy", TestNpz.NpyWithHeader($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({DSae},), }} # comment", TestNpz.F32(BEnc)));
        Assert.Equal("b_enc", Refused("after.npz", TestNpz.Zip(m), "after the dict").Tensor);
    }

    [Fact]
    public void Npy_ShapeThatIsAnIntNotATuple()
    {
        NpyRefused("int.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", Three), "is an int, not a tuple");
        NpyRefused("bare.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': 3, }", Three), "tuple");
        NpyRefused("list.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", Three), "tuple");

        // Valid spellings numpy accepts.
        Assert.Equal([3], Npy.ReadFloat32(_dir.Write("t1.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': ( 3 , ), }", Three))).Shape);
        Assert.Equal([1, 3], Npy.ReadFloat32(_dir.Write("t2.npy", TestNpz.NpyWithHeader("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1, 3,)}", Three))).Shape);
        Assert.Equal([], Npy.ReadFloat32(_dir.Write("t0.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", Three[..4]))).Shape);
    }

    [Fact]
    public void Npy_OnlyVersions1_2_3()
    {
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        NpyRefused("v15.npy", TestNpz.NpyWithHeader(dict, Three, 1, 5), "version");
        NpyRefused("v21.npy", TestNpz.NpyWithHeader(dict, Three, 2, 1), "version");
        NpyRefused("v40.npy", TestNpz.NpyWithHeader(dict, Three, 4, 0), "version");
        NpyRefused("v0.npy", TestNpz.NpyWithHeader(dict, Three, 0, 0), "version");
        foreach (int v in new[] { 1, 2, 3 })
        {
            Assert.Equal([1f, 2f, 3f], Npy.ReadFloat32(_dir.Write($"v{v}.npy", TestNpz.NpyWithHeader(dict, Three, v, 0))).Data);
        }
    }

    [Fact]
    public void Npy_DuplicateOrMissingOrExtraKeys()
    {
        NpyRefused("dup.npy", TestNpz.NpyWithHeader("{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", Three), "twice");
        NpyRefused("miss.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'shape': (3,), }", Three), "lacks");
        NpyRefused("extra.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", Three), "unexpected key");
        NpyRefused("truex.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': Truex, 'shape': (3,), }", Three), "True or False");
        NpyRefused("neg.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", Three), "shape");
        NpyRefused("esc.npy", TestNpz.NpyWithHeader("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,), }", Three), "escape");
    }

    [Fact]
    public void Npy_FortranOrderIsRightAtEveryRank()
    {
        // A [2, 3, 4] array stored column-major (first index fastest), as np.asfortranarray + np.save writes it.
        int[] dims = [2, 3, 4];
        var rowMajor = new float[24];
        var stored = new float[24];
        for (int i = 0; i < 2; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                for (int k = 0; k < 4; k++)
                {
                    float v = (100 * i) + (10 * j) + k + 0.5f;
                    rowMajor[(i * 12) + (j * 4) + k] = v;
                    stored[i + (2 * j) + (6 * k)] = v;
                }
            }
        }

        var p = _dir.Write("f3.npy", TestNpz.NpyWithHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", TestNpz.F32(stored)));
        var (data, shape) = Npy.ReadFloat32(p);
        Assert.Equal(dims, shape);
        Assert.Equal(rowMajor, data);

        // Rank 4, big-endian float64: every path through the converter.
        var be = new byte[16 * 8];
        var expected4 = new float[16];
        for (int s = 0; s < 16; s++)
        {
            // storage index s = a + 2b + 4c + 8d for shape (2, 2, 2, 2); row-major index = 8a + 4b + 2c + d.
            int a = s & 1, b = (s >> 1) & 1, c = (s >> 2) & 1, d = (s >> 3) & 1;
            BinaryPrimitives.WriteDoubleBigEndian(be.AsSpan(s * 8), s + 0.25);
            expected4[(8 * a) + (4 * b) + (2 * c) + d] = s + 0.25f;
        }

        var (data4, _) = Npy.ReadFloat32(_dir.Write("f4.npy", TestNpz.NpyWithHeader("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 2, 2, 2), }", be)));
        Assert.Equal(expected4, data4);
    }

    [Fact]
    public void Npy_ErrorMessagesQuoteAPrefix()
    {
        string longDescr = new('x', 9_000);
        var e = NpyRefused("longdescr.npy", TestNpz.NpyWithHeader($"{{'descr': '<{longDescr}', 'fortran_order': False, 'shape': (3,), }}", Three), "unsupported dtype");
        Assert.Contains("characters", e.Message);

        // 400,000 characters: over numpy's 10,000-character limit, refused by its length.
        string huge = new('y', 400_000);
        NpyRefused("huge.npy", TestNpz.NpyWithHeader($"{{'descr': '<{huge}', 'fortran_order': False, 'shape': (3,), }}", Three, 2, 0), "numpy reads safely");

        // A malformed header of 9,000 characters is quoted by a prefix too.
        NpyRefused("longbad.npy", TestNpz.NpyWithHeader($"{{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'pad': '{new string('z', 9_000)}'}}", Three), "unexpected key");
    }

    // ---- safetensors ----

    [Fact]
    public void SafeTensors_InvalidUtf8InTheHeader()
    {
        var (h, d) = SafeTensorsParts(new Dictionary<string, string> { ["format"] = "pt", ["note"] = "XX" });
        var header = Encoding.UTF8.GetBytes(h);
        int at = h.IndexOf("XX", StringComparison.Ordinal);
        header[at] = 0xC3;
        header[at + 1] = 0x28;
        Refused("utf8.safetensors", TestSafeTensors.Build(header, d), "UTF-8");

        // In a tensor name.
        var h2 = Encoding.UTF8.GetBytes(h.Replace("\"b_dec\"", "\"b_de\u00e9\"", StringComparison.Ordinal));
        int at2 = Array.IndexOf(h2, (byte)0xC3);
        h2[at2 + 1] = 0xFF;
        Refused("utf8name.safetensors", TestSafeTensors.Build(h2, d), "UTF-8");
    }

    [Fact]
    public void SafeTensors_StringsWhereNumbersBelong()
    {
        var (h, d) = SafeTensorsParts();
        Refused("stroff.safetensors", TestSafeTensors.Build(h.Replace("\"data_offsets\":[0,", "\"data_offsets\":[\"0\",", StringComparison.Ordinal), d), "data_offsets");
        Refused("strshape.safetensors", TestSafeTensors.Build(h.Replace("\"shape\":[5,7]", "\"shape\":[\"5\",7]", StringComparison.Ordinal), d), "shape");
        Refused("floatoff.safetensors", TestSafeTensors.Build(h.Replace("\"data_offsets\":[0,", "\"data_offsets\":[0.0,", StringComparison.Ordinal), d), "data_offsets");
        Refused("meta.safetensors", TestSafeTensors.Build(h.Replace("\"format\":\"pt\"", "\"format\":5", StringComparison.Ordinal), d), "__metadata__");
    }

    [Fact]
    public void SafeTensors_HolesAndUnindexedTrailingBytes()
    {
        // b_enc written with 8 bytes more than its 28, then its entry shrunk back to [280, 308]: bytes 308..316 belong to no tensor.
        var padded = Tensors().Select(t => (t.Name, "F32", t.Shape, t.Name == "b_enc" ? [.. TestNpz.F32(t.Data), .. new byte[8]] : TestNpz.F32(t.Data))).ToList();
        var (h, d) = TestSafeTensors.Parts(TestSafeTensors.Of(padded, Pt));
        Assert.Equal("b_dec", Refused("hole.safetensors", TestSafeTensors.Build(h.Replace("\"data_offsets\":[280,316]", "\"data_offsets\":[280,308]", StringComparison.Ordinal), d), "hole").Tensor);

        var (h2, d2) = SafeTensorsParts();
        Refused("trail.safetensors", TestSafeTensors.Build(h2, [.. d2, 0, 0, 0, 0, 0, 0, 0, 0]), "after its last tensor");

        // A hole before the first tensor.
        Refused("lead.safetensors", TestSafeTensors.Build(h2.Replace("[0,140]", "[4,144]", StringComparison.Ordinal).Replace("\"w_dec\":{\"dtype\":\"F32\",\"shape\":[7,5],\"data_offsets\":[140,", "\"w_dec\":{\"dtype\":\"F32\",\"shape\":[7,5],\"data_offsets\":[144,", StringComparison.Ordinal), [.. d2, 0, 0, 0, 0]));
    }

    [Fact]
    public void SafeTensors_RepeatedFieldInAnEntry()
    {
        var (h, d) = SafeTensorsParts();
        Refused("rep.safetensors", TestSafeTensors.Build(h.Replace("\"b_dec\":{\"dtype\":\"F32\",", "\"b_dec\":{\"dtype\":\"F64\",\"dtype\":\"F32\",", StringComparison.Ordinal), d), "repeats");
    }
}
