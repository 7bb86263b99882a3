using System.Runtime.InteropServices;
using System.Text.Json;
using GemmaScope.Engine.Kernels;
using GemmaScope.Formats;

namespace GemmaScope.Engine.Tests.Kernels;

/// <summary>
/// The kernels against PyTorch's own float32 results, computed as Hugging Face's Gemma code does
/// (tools/engine-fixtures/make_kernel_probes.py; Fixtures/kernel-probes.json). Measured in ulps of float32.
/// </summary>
public class TorchProbeTests
{
    private static readonly JsonElement Probes = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "kernel-probes.json"))).RootElement;

    private static float[] F(JsonElement e)
    {
        var a = new float[e.GetArrayLength()];
        int i = 0;
        foreach (var v in e.EnumerateArray())
        {
            a[i++] = BitConverter.UInt32BitsToSingle(v.GetUInt32());
        }

        return a;
    }

    private static long Ulps(float a, float b)
    {
        if (a == b)
        {
            return 0;
        }

        int ia = BitConverter.SingleToInt32Bits(a), ib = BitConverter.SingleToInt32Bits(b);
        if (ia < 0)
        {
            ia = int.MinValue - ia;
        }

        if (ib < 0)
        {
            ib = int.MinValue - ib;
        }

        return Math.Abs((long)ia - ib);
    }

    private static void WithinUlps(float[] expected, ReadOnlySpan<float> actual, long ulps, string what, double orAbsolute = 0)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            long u = Ulps(expected[i], actual[i]);
            Assert.True(
                u <= ulps || Math.Abs((double)expected[i] - actual[i]) <= orAbsolute,
                $"{what}[{i}]: torch {expected[i]:R}, ours {actual[i]:R} ({u} ulps > {ulps})");
        }
    }

    [Fact]
    public void Rope_tables_match_torch_within_one_ulp_at_long_positions()
    {
        foreach (var r in Probes.GetProperty("rope").EnumerateArray())
        {
            int d = r.GetProperty("dim").GetInt32();
            var table = new RopeTable(d, r.GetProperty("theta").GetDouble(), r.GetProperty("factor").GetDouble());
            WithinUlps(F(r.GetProperty("inv_freq")), table.InverseFrequencies, 1, $"inv_freq d={d}");
            int[] positions = r.GetProperty("positions").EnumerateArray().Select(p => p.GetInt32()).ToArray();
            var cos = new float[positions.Length * d / 2];
            var sin = new float[positions.Length * d / 2];
            table.Fill(positions, cos, sin);

            // cos/sin of the same float32 angle: Sleef is within 1 ulp, ours correctly rounded. torch's float32 pow is not
            // always correctly rounded (inv_freq may differ by an ulp in a column); there the angle differs by
            // position · Δinv_freq, which bounds the change of cos and sin.
            var torchInv = F(r.GetProperty("inv_freq"));
            var torchCos = F(r.GetProperty("cos"));
            var torchSin = F(r.GetProperty("sin"));
            int half = d / 2;
            for (int t = 0; t < positions.Length; t++)
            {
                for (int i = 0; i < half; i++)
                {
                    int k = (t * half) + i;
                    if (torchInv[i] == table.InverseFrequencies[i])
                    {
                        Assert.True(Ulps(torchCos[k], cos[k]) <= 1, $"cos p={positions[t]} i={i}: torch {torchCos[k]:R}, ours {cos[k]:R}");
                        Assert.True(Ulps(torchSin[k], sin[k]) <= 1, $"sin p={positions[t]} i={i}: torch {torchSin[k]:R}, ours {sin[k]:R}");
                    }
                    else
                    {
                        // Plus each angle's own float32 rounding (half an ulp of the angle each).
                        float angle = positions[t] * table.InverseFrequencies[i];
                        double bound = (positions[t] * Math.Abs((double)torchInv[i] - table.InverseFrequencies[i]) * 1.01) + (MathF.BitIncrement(angle) - angle) + 1e-7;
                        Assert.True(Math.Abs(torchCos[k] - cos[k]) <= bound, $"cos p={positions[t]} i={i}");
                        Assert.True(Math.Abs(torchSin[k] - sin[k]) <= bound, $"sin p={positions[t]} i={i}");
                    }
                }
            }
        }
    }

    [Fact]
    public void Rope_apply_matches_torch_bitwise_given_the_same_tables()
    {
        var r = Probes.GetProperty("rope")[0];
        int d = 256;
        int tokens = r.GetProperty("positions").GetArrayLength();
        var cos = F(r.GetProperty("cos"));
        var sin = F(r.GetProperty("sin"));
        var x = F(Probes.GetProperty("rope_apply").GetProperty("x"));
        var y = TestData.Poisoned(x.Length);
        Rope.Apply(x, tokens, 1, d, cos, sin, y);
        WithinUlps(F(Probes.GetProperty("rope_apply").GetProperty("y")), y, 0, "rope apply");
    }

    [Fact]
    public void RmsNorm_matches_torch_within_a_few_ulps()
    {
        var p = Probes.GetProperty("rmsnorm");
        int rows = p.GetProperty("rows").GetInt32(), width = p.GetProperty("width").GetInt32();
        var x = F(p.GetProperty("x"));
        var w = F(p.GetProperty("w"));
        var g = RmsNorm.Gain(MemoryMarshal.AsBytes(w.AsSpan()), TensorDType.Float32, width, "w");
        var y = TestData.Poisoned(x.Length);
        RmsNorm.Forward(x, rows, width, g, (float)p.GetProperty("eps").GetDouble(), y);

        // torch's float32 mean has its own summation error; ours is the float64 sum rounded once.
        WithinUlps(F(p.GetProperty("y")), y, 4, "rmsnorm");
    }

    [Fact]
    public void GeGlu_and_softcap_match_torch_within_a_few_ulps()
    {
        var p = Probes.GetProperty("geglu");
        var gate = F(p.GetProperty("gate"));
        var y = TestData.Poisoned(gate.Length);
        GeGlu.Forward(gate, F(p.GetProperty("up")), y);
        // Where gelu is nearly 0 (gate below about −4) torch's float32 tanh has already saturated to −1 (Sleef, within
        // an ulp) and gives ±0, while ours is correctly rounded and gives the true ~1e-7: compare those absolutely.
        WithinUlps(F(p.GetProperty("y")), y, 4, "geglu", orAbsolute: 1e-6);

        var s = Probes.GetProperty("softcap");
        var x = F(s.GetProperty("x"));
        SoftCap.Apply(x, (float)s.GetProperty("cap").GetDouble());
        WithinUlps(F(s.GetProperty("y")), x, 2, "softcap");
    }

    [Fact]
    public void Embedding_normalizer_is_torch_float32_sqrt()
    {
        foreach (var e in Probes.GetProperty("normalizer").EnumerateObject())
        {
            Assert.Equal(BitConverter.UInt32BitsToSingle(e.Value.GetUInt32()), Embedding.Normalizer(int.Parse(e.Name, System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}
