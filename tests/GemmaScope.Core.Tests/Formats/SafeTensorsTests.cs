using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GemmaScope.Core.Tests.Support;

namespace GemmaScope.Core.Tests.Formats;

public class SafeTensorsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void SaveAsSaeLensFolder_RoundTripsBitExactlyWithConfig()
    {
        var config = new SaeConfig { HookName = "blocks.20.hook_resid_post", HookLayer = 20, ModelName = "gemma-2-2b", NeuronpediaId = "gemma-2-2b/20-gemmascope-res-16k" };
        using var npz = JumpReLUSae.Load(Fixtures.Numpy("params.npz"), new SaeLoadOptions { Config = config });
        var folder = _dir.File("sae");
        npz.Save(folder);
        Assert.True(File.Exists(Path.Combine(folder, "sae_weights.safetensors")));

        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "cfg.json")));
        Assert.Equal(33, cfg.RootElement.GetProperty("d_in").GetInt32());
        Assert.Equal(100, cfg.RootElement.GetProperty("d_sae").GetInt32());
        Assert.Equal("jumprelu", cfg.RootElement.GetProperty("architecture").GetString());
        Assert.Equal("blocks.20.hook_resid_post", cfg.RootElement.GetProperty("hook_name").GetString());

        using var st = JumpReLUSae.Load(folder);
        Assert.Equal(config.HookName, st.Config.HookName);
        Assert.Equal(config.NeuronpediaId, st.Config.NeuronpediaId);
        AssertSameWeights(npz, st);
    }

    [Fact]
    public void SafeTensorsLayoutIsTheStandardOne()
    {
        using var npz = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        var file = _dir.File("w.safetensors");
        npz.Save(file);
        var bytes = File.ReadAllBytes(file);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8);
        using var h = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n));
        var wEnc = h.RootElement.GetProperty("W_enc");
        Assert.Equal("F32", wEnc.GetProperty("dtype").GetString());
        Assert.Equal([33, 100], wEnc.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));

        // Read W_enc[3, 17] straight from the bytes and compare with numpy's value.
        var off = wEnc.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        float v = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(8 + n + off[0] + ((3 * 100 + 17) * 4))));
        var reference = TestNpz.Read(Fixtures.Numpy("params.npz"));
        Assert.Equal((float)reference["W_enc"].Data[(3 * 100) + 17], v);
        Assert.Contains("\"cfg\"", Encoding.UTF8.GetString(bytes, 8, (int)n));
    }

    [Fact]
    public void GemmaScope2LowercaseSafeTensorsLoad()
    {
        var r = TestNpz.Read(Fixtures.Numpy("params.npz"));
        byte[] F32(string k) => [.. r[k].Data.SelectMany(d => BitConverter.GetBytes((float)d))];
        var file = _dir.File("params.safetensors");
        GemmaScope.Formats.SafeTensors.Write(file,
        [
            new("w_enc", GemmaScope.Formats.TensorDType.Float32, [33, 100], F32("W_enc")),
            new("w_dec", GemmaScope.Formats.TensorDType.Float32, [100, 33], F32("W_dec")),
            new("b_enc", GemmaScope.Formats.TensorDType.Float32, [100], F32("b_enc")),
            new("b_dec", GemmaScope.Formats.TensorDType.Float32, [33], F32("b_dec")),
            new("threshold", GemmaScope.Formats.TensorDType.Float32, [100], F32("threshold")),
        ]);
        using var a = JumpReLUSae.Load(file);
        using var b = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        AssertSameWeights(a, b);
    }

    [Fact]
    public void BFloat16SaeSavesBf16AndReloadsIdentically()
    {
        using var bf = JumpReLUSae.Load(Fixtures.Numpy("params.npz"), new SaeLoadOptions { Precision = SaePrecision.BFloat16 });
        var file = _dir.File("bf.safetensors");
        bf.Save(file);
        using var again = JumpReLUSae.Load(file, new SaeLoadOptions { Precision = SaePrecision.BFloat16 });
        Assert.Equal(0, again.CopiedBytes);
        var x = SaeReference.RandomInput(4, 33, 3);
        Assert.Equal(bf.Encode(x), again.Encode(x));
        using var widened = JumpReLUSae.Load(file);
        Assert.Equal(bf.Encode(x), widened.Encode(x));
    }

    internal static void AssertSameWeights(JumpReLUSae a, JumpReLUSae b)
    {
        Assert.Equal((a.InputSize, a.FeatureCount), (b.InputSize, b.FeatureCount));
        for (int j = 0; j < a.FeatureCount; j++)
        {
            Assert.Equal(a.GetDecoderDirection(j), b.GetDecoderDirection(j));
        }

        var x = SaeReference.RandomInput(6, a.InputSize, 11);
        Assert.Equal(a.Encode(x), b.Encode(x));
        Assert.Equal(a.Decode(a.Encode(x)), b.Decode(b.Encode(x)));
    }
}
