using GemmaScope.Core.Tests.Support;

namespace GemmaScope.Core.Tests.Formats;

/// <summary>Files written by numpy itself (tools/fixtures/make_sae_fixtures.py), expected values computed by numpy in float64.</summary>
public class NumpyFixtureTests
{
    [Fact]
    public void NumpySavez_EncodesAndDecodesAsNumpyFloat64Reference()
    {
        using var sae = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        var r = TestNpz.Read(Fixtures.Numpy("reference.npz"));
        var x = r["x"].Data.Select(v => (float)v).ToArray();
        Assert.Equal(33, sae.InputSize);
        Assert.Equal(100, sae.FeatureCount);

        var f = SaeReference.Poisoned(7 * 100);
        sae.Encode(x, f);
        SaeReference.Close(r["f"].Data, f, 1e-5, "f", 100);
        int active = f.Count(v => v != 0);
        Assert.InRange(active, 1, f.Length - 1);

        var xhat = SaeReference.Poisoned(7 * 33);
        sae.Decode(f, xhat);
        SaeReference.Close(r["xhat"].Data, xhat, 1e-5, "xhat", 33);
    }

    [Theory]
    [InlineData("params_compressed.npz")]
    [InlineData("params_f64_be.npz")]
    [InlineData("params_fortran.npz")]
    [InlineData("params_lower.npz")]
    public void VariantsLoadToTheSameWeights(string file)
    {
        using var baseSae = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        using var sae = JumpReLUSae.Load(Fixtures.Numpy(file));
        var x = SaeReference.RandomInput(5, 33, 7);
        Assert.Equal(baseSae.Encode(x), sae.Encode(x));
        var f = baseSae.Encode(x);
        Assert.Equal(baseSae.Decode(f), sae.Decode(f));
    }

    [Fact]
    public void Float16Npz_MatchesReferenceOnItsOwnValues()
    {
        using var sae = JumpReLUSae.Load(Fixtures.Numpy("params_f16.npz"));
        var reference = Fixtures.ReferenceFromNpz(Fixtures.Numpy("params_f16.npz"));
        var x = SaeReference.RandomInput(3, 33, 8);
        var f = SaeReference.Poisoned(300);
        sae.Encode(x, f);
        SaeReference.Close(reference.Encode(x), f, 1e-5, "f", 100);
    }

    [Fact]
    public void StoredMembersAreMapped_DeflatedAreCopied()
    {
        using var stored = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        using var deflated = JumpReLUSae.Load(Fixtures.Numpy("params_compressed.npz"));
        Assert.Equal(Path.GetFullPath(Fixtures.Numpy("params.npz")), stored.SourcePath);
        Assert.True(stored.MappedBytes > 0, "stored float32 members should be used in place from the map");
        Assert.Equal(0, stored.CopiedBytes);
        Assert.True(deflated.CopiedBytes >= 2L * 33 * 100 * 4, "deflated members must be inflated into memory");
    }
}

public class SymlinkTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void LoadsThroughASymlinkAsInAHuggingFaceCache()
    {
        // huggingface_hub's snapshots/<commit>/<path> is a symlink to blobs/<etag>; the link itself is a few bytes long.
        var blob = _dir.File("blob");
        File.Copy(Fixtures.Numpy("params.npz"), blob);
        var link = _dir.File("params.npz");
        File.CreateSymbolicLink(link, "blob");
        using var viaLink = JumpReLUSae.Load(link);
        using var direct = JumpReLUSae.Load(blob);
        SafeTensorsTests.AssertSameWeights(direct, viaLink);
    }
}
