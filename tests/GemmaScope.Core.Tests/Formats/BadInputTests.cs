using System.Buffers.Binary;
using System.Text;
using GemmaScope.Core.Tests.Support;
using GemmaScope.Formats;
using static GemmaScope.Core.Tests.Formats.FormatCorpus;

namespace GemmaScope.Core.Tests.Formats;

/// <summary>Every malformed input gets an exception that names the file, the tensor, what was expected and what was found.</summary>
public class BadInputTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static SaeFormatException Fails(string path)
    {
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(path).Dispose());
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void WellFormedTestArchiveLoads()
    {
        // The writer used below makes valid archives, so each failure is caused by the one defect introduced.
        var p = _dir.Write("ok.npz", TestNpz.Zip(Members()));
        using var sae = JumpReLUSae.Load(p);
        Assert.Equal((DIn, DSae), (sae.InputSize, sae.FeatureCount));
    }

    [Fact]
    public void MissingTensor()
    {
        var m = Members();
        m.RemoveAt(4);
        var e = Fails(_dir.Write("m.npz", TestNpz.Zip(m)));
        Assert.Equal("threshold", e.Tensor);
        Assert.Contains("missing", e.Message);
        Assert.Contains("W_enc", e.Actual);
    }

    [Theory]
    [InlineData("threshold", new[] { DSae - 1 }, new[] { DSae })] // one threshold short
    [InlineData("W_dec", new[] { DIn, DSae }, new[] { DSae, DIn })] // the decoder transposed
    public void TensorOfTheWrongShapeIsNamedWithBothShapes(string tensor, int[] shape, int[] expected)
    {
        var m = Members();
        m[m.FindIndex(x => x.Name == tensor + ".npy")] = (tensor + ".npy", TestNpz.Npy(Seq(shape.Aggregate(1, (a, b) => a * b), 0.1f), shape));
        var e = Fails(_dir.Write(tensor + ".npz", TestNpz.Zip(m)));
        Assert.Equal(tensor, e.Tensor);
        Assert.Equal($"[{string.Join(", ", expected)}]", e.Expected);
        Assert.Equal($"[{string.Join(", ", shape)}]", e.Actual);
    }

    [Fact]
    public void BothUpperAndLowerCaseNamesAreAmbiguous()
    {
        var m = Members();
        m.Add(("w_enc.npy", TestNpz.Npy(Seq(DIn * DSae, 0.1f), [DIn, DSae])));
        Assert.Contains("ambiguous", Fails(_dir.Write("a.npz", TestNpz.Zip(m))).Message);
    }

    [Fact]
    public void NaNInWeights()
    {
        var w = Seq(DIn * DSae, 0.1f);
        w[2 * DSae + 3] = float.NaN;
        var m = Members();
        m[0] = ("W_enc.npy", TestNpz.Npy(w, [DIn, DSae]));
        var e = Fails(_dir.Write("n.npz", TestNpz.Zip(m)));
        Assert.Equal("W_enc", e.Tensor);
        Assert.Contains("[2, 3]", e.Actual);
    }

    [Fact]
    public void InfinityInThresholdIsCaughtEvenWithoutFullValidation()
    {
        var t = Seq(DSae, 0.1f);
        t[6] = float.PositiveInfinity;
        var m = Members();
        m[4] = ("threshold.npy", TestNpz.Npy(t, [DSae]));
        var p = _dir.Write("i.npz", TestNpz.Zip(m));
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(p, new SaeLoadOptions { Validation = SaeValidation.StructureOnly }));
        Assert.Equal("threshold", e.Tensor);
    }

    [Fact]
    public void TruncatedFile()
    {
        var bytes = TestNpz.Zip(Members());
        foreach (int keep in new[] { bytes.Length - 1, bytes.Length / 2, 100, 3 })
        {
            var e = Fails(_dir.Write($"tr{keep}.npz", bytes[..keep]));
            Assert.NotNull(e.Message);
        }
    }

    [Fact]
    public void NotAZip()
    {
        var e = Fails(_dir.Write("x.npz", Encoding.ASCII.GetBytes("this is not an archive at all, just text")));
        Assert.Contains("neither", e.Message);
    }

    [Fact]
    public void ArrayDataShorterThanHeaderSays()
    {
        var m = Members();
        var npy = TestNpz.Npy(Seq(DSae, 0.1f), [DSae + 4]);
        m[2] = ("b_enc.npy", npy);
        var e = Fails(_dir.Write("s.npz", TestNpz.Zip(m)));
        Assert.Equal("b_enc", e.Tensor);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void UInt16IsRefusedUnlessDeclaredBFloat16()
    {
        var raw = new byte[DSae * 2];
        for (int j = 0; j < DSae; j++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan(j * 2), 0x3F80); // bf16 1.0
        }

        var m = Members();
        m[4] = ("threshold.npy", TestNpz.Npy("<u2", [DSae], raw));
        var p = _dir.Write("u.npz", TestNpz.Zip(m));
        var e = Fails(p);
        Assert.Equal("<u2", e.Actual);
        using var sae = JumpReLUSae.Load(p, new SaeLoadOptions { UInt16AsBFloat16 = true });
        Assert.Equal(DSae, sae.FeatureCount);
    }

    [Fact]
    public void UnsupportedDType()
    {
        var m = Members();
        m[3] = ("b_dec.npy", TestNpz.Npy("<i4", [DIn], new byte[DIn * 4]));
        var e = Fails(_dir.Write("i4.npz", TestNpz.Zip(m)));
        Assert.Equal("b_dec", e.Tensor);
        Assert.Equal("<i4", e.Actual);
    }

    [Fact]
    public void SafeTensorsHeaderLyingAboutOffsets()
    {
        using var sae = JumpReLUSae.Load(_dir.Write("ok.npz", TestNpz.Zip(Members())));
        var st = _dir.File("ok.safetensors");
        sae.Save(st);
        var bytes = File.ReadAllBytes(st);
        var (header, data) = TestSafeTensors.Parts(bytes);

        // b_dec ends where threshold begins; claim one float more and the span disagrees with the shape.
        var lie = System.Text.RegularExpressions.Regex.Replace(header, "(\"b_dec\":\\{[^}]*\"data_offsets\":\\[)(\\d+),(\\d+)", m =>
            $"{m.Groups[1].Value}{m.Groups[2].Value},{long.Parse(m.Groups[3].Value) + 4}");
        Assert.NotEqual(header, lie);
        var p = _dir.Write("lie.safetensors", TestSafeTensors.Build(lie, data));
        var e = Fails(p);
        Assert.Equal("b_dec", e.Tensor);

        // Offsets past the end of the file (a truncated download).
        var cut = _dir.Write("cut.safetensors", bytes[..^8]);
        var e2 = Fails(cut);
        Assert.Equal("threshold", e2.Tensor);
        Assert.Contains("past the end", e2.Message);

        // A header length larger than the file.
        var big = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(big, (ulong)bytes.Length);
        Fails(_dir.Write("len.safetensors", big));
    }

    [Fact]
    public void MissingFileAndEmptyFolder()
    {
        Assert.Throws<FileNotFoundException>(() => JumpReLUSae.Load(_dir.File("nope.npz")));
        var empty = Directory.CreateDirectory(_dir.File("empty")).FullName;
        var e = Assert.Throws<FileNotFoundException>(() => JumpReLUSae.Load(empty));
        Assert.Contains("params.npz", e.Message);
    }

    /// <summary>Loads a folder of the valid params.npz and this cfg.json, which must be refused.</summary>
    private SaeFormatException ConfigRefused(string name, string cfgJson)
    {
        var folder = Directory.CreateDirectory(_dir.File(name)).FullName;
        File.WriteAllBytes(Path.Combine(folder, "params.npz"), TestNpz.Zip(Members()));
        File.WriteAllText(Path.Combine(folder, "cfg.json"), cfgJson);
        return Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(folder));
    }

    [Fact]
    public void ConfigThatDisagreesWithWeights()
    {
        var e = ConfigRefused("cfg", $"{{\"d_in\": {DIn + 1}, \"d_sae\": {DSae}, \"architecture\": \"jumprelu\"}}");
        Assert.Equal($"{DIn}", e.Expected);
        Assert.Equal($"{DIn + 1}", e.Actual);
        Assert.Contains("jumprelu", ConfigRefused("cfgarch", $"{{\"d_in\": {DIn}, \"d_sae\": {DSae}, \"architecture\": \"topk\"}}").Message);
    }

    /// <summary>A deflated npz made by System.IO.Compression, with the central directory entry of <paramref name="member"/> patched.</summary>
    private static byte[] DeflatedWithPatch(List<(string, byte[])> members, string member, int fieldOffset, uint value)
    {
        var ms = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in members)
            {
                using var e = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.Optimal).Open();
                e.Write(data);
            }
        }

        var bytes = ms.ToArray();
        var nameBytes = Encoding.ASCII.GetBytes(member);
        for (int i = 0; i + 46 < bytes.Length; i++)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i)) == 0x02014b50 && bytes.AsSpan(i + 46, nameBytes.Length).SequenceEqual(nameBytes))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i + fieldOffset), value);
                return bytes;
            }
        }

        throw new InvalidOperationException("member not found");
    }

    [Fact]
    public void DeflatedArchiveLoads_AndItsHeaderLiesAreCaught()
    {
        var ok = _dir.Write("deflated.npz", DeflatedWithPatch(Members(), "W_enc.npy", 0, 0x02014b50));
        using (var sae = JumpReLUSae.Load(ok))
        {
            Assert.Equal(DSae, sae.FeatureCount);
        }

        // An uncompressed size no deflate stream of this length can produce: refused before allocating it.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Fails(_dir.Write("big.npz", DeflatedWithPatch(Members(), "b_enc.npy", 24, 0x7FFFFFC7)));
        Assert.Equal("b_enc", e.Tensor);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 100_000_000, "must not allocate the claimed size");

        // A local header offset past the end of the file.
        var e2 = Fails(_dir.Write("off.npz", DeflatedWithPatch(Members(), "threshold.npy", 42, 0x7FFFFFF0)));
        Assert.Contains("outside the file", e2.Message);

        // A claimed size smaller than the real data: the npy inside disagrees.
        Fails(_dir.Write("small.npz", DeflatedWithPatch(Members(), "b_dec.npy", 24, 20)));
    }

    [Fact]
    public void ShapeThatOverflowsIsAFormatError()
    {
        var m = Members();
        m[2] = ("b_enc.npy", TestNpz.Npy("<f4", [1 << 30, 1 << 30, 1 << 30], []));
        var e = Fails(_dir.Write("ov.npz", TestNpz.Zip(m)));
        Assert.Equal("b_enc", e.Tensor);
    }

    [Fact]
    public void SafeTensorsNamingATensorTwice()
    {
        var header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        var e = Fails(_dir.Write("dup.safetensors", TestSafeTensors.Build(header, new byte[8])));
        Assert.Equal("b", e.Tensor);
        Assert.Contains("twice", e.Message);
    }

    [Fact]
    public void ConfigValuesOfTheWrongTypeOrDuplicatedAreRefused()
    {
        Assert.Equal("cfg.json d_in", ConfigRefused("cfgtype", $"{{\"d_in\": \"{DIn}\"}}").Tensor);
        ConfigRefused("cfgdup", $"{{\"d_in\": {DIn}, \"d_in\": {DIn}}}");
    }

    [Fact]
    public void NpyWithTrailingBytesIsRefused()
    {
        var p = _dir.Write("a.npy", [.. TestNpz.Npy([1f, 2f, 3f], [3]), 0, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Throws<SaeFormatException>(() => GemmaScope.Formats.Npy.ReadFloat32(p));
        var good = _dir.Write("b.npy", TestNpz.Npy([1f, 2f, 3f], [3]));
        Assert.Equal([1f, 2f, 3f], GemmaScope.Formats.Npy.ReadFloat32(good).Data);
    }
}
