using System.Runtime.InteropServices;
using GemmaScope.Engine.Kernels;
using GemmaScope.Formats;

namespace GemmaScope.Engine.Tests.Kernels;

public class RmsNormTests
{
    // Independent float64 reference: y = x / sqrt(mean(x²) + eps) * (1 + w).
    private static (double[] Y, double[] Scale, double[] Normalized) Reference(float[] x, int rows, int width, float[] w, double eps)
    {
        var y = new double[rows * width];
        var s = new double[rows];
        var n = new double[rows * width];
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < width; i++)
            {
                ss += (double)x[(r * width) + i] * x[(r * width) + i];
            }

            s[r] = Math.Sqrt((ss / width) + eps);
            for (int i = 0; i < width; i++)
            {
                n[(r * width) + i] = x[(r * width) + i] / s[r];
                y[(r * width) + i] = n[(r * width) + i] * (1.0 + w[i]);
            }
        }

        return (y, s, n);
    }

    [Theory]
    [InlineData(5, 37)]
    [InlineData(3, 24)]
    [InlineData(2, 2304)]
    [InlineData(4, 7)]
    public void Matches_float64_reference_with_scale_and_normalized(int rows, int width)
    {
        var x = TestData.Random(rows * width, 1 + width, -3f, 3f);
        var w = TestData.Random(width, 2 + width, -0.5f, 0.5f);
        var g = RmsNorm.Gain(MemoryMarshal.AsBytes(w.AsSpan()), TensorDType.Float32, width, "w");
        var y = TestData.Poisoned(rows * width);
        var s = TestData.Poisoned(rows);
        var n = TestData.Poisoned(rows * width);
        RmsNorm.Forward(x, rows, width, g, 1e-6f, y, s, n);

        var (ry, rs, rn) = Reference(x, rows, width, w, 1e-6);
        TestData.Close(ry, y, 2e-6, "y");
        TestData.Close(rs, s, 1e-6, "scale");
        TestData.Close(rn, n, 1e-6, "normalized");
    }

    [Fact]
    public void In_place_equals_out_of_place_and_eps_matters_for_small_rows()
    {
        const int width = 37;
        var x = TestData.Random(2 * width, 5, -1e-3f, 1e-3f);
        var w = TestData.Random(width, 6);
        var g = RmsNorm.Gain(MemoryMarshal.AsBytes(w.AsSpan()), TensorDType.Float32, width, "w");
        var y = TestData.Poisoned(2 * width);
        RmsNorm.Forward(x, 2, width, g, 1e-6f, y);
        var (ry, _, _) = Reference(x, 2, width, w, 1e-6);
        TestData.Close(ry, y, 2e-6, "y");

        var inPlace = (float[])x.Clone();
        RmsNorm.Forward(inPlace, 2, width, g, 1e-6f, inPlace);
        TestData.BitEqual(y, inPlace, "in place");
    }

    [Theory]
    [InlineData(TensorDType.BFloat16)]
    [InlineData(TensorDType.Float16)]
    public void Gain_widens_bf16_and_f16_weights(TensorDType dtype)
    {
        const int width = 37;
        var w = TestData.Random(width, 9, -1f, 1f);
        byte[] bytes = new byte[width * 2];
        var exact = new float[width];
        for (int i = 0; i < width; i++)
        {
            ushort bits = dtype == TensorDType.BFloat16 ? TestData.ToBf16(w[i]) : BitConverter.HalfToUInt16Bits((Half)w[i]);
            exact[i] = dtype == TensorDType.BFloat16 ? BitConverter.Int32BitsToSingle(bits << 16) : (float)BitConverter.UInt16BitsToHalf(bits);
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), bits);
        }

        var g = RmsNorm.Gain(bytes, dtype, width, "w");
        for (int i = 0; i < width; i++)
        {
            Assert.Equal(1f + exact[i], g[i]);
        }

        var ex = Assert.Throws<ArgumentException>(() => RmsNorm.Gain(bytes.AsSpan(0, 10), dtype, width, "model.norm.weight"));
        Assert.Contains("model.norm.weight", ex.Message);
    }

    [Fact]
    public void A_row_gives_the_same_bits_alone_and_in_a_batch()
    {
        const int width = 2304 + 5;
        const int rows = 7;
        var x = TestData.Random(rows * width, 11, -4f, 4f);
        var g = TestData.Random(width, 12, 0.5f, 1.5f);
        var all = TestData.Poisoned(rows * width);
        RmsNorm.Forward(x, rows, width, g, 1e-6f, all);
        for (int r = 0; r < rows; r++)
        {
            var one = TestData.Poisoned(width);
            RmsNorm.Forward(x.AsSpan(r * width, width), 1, width, g, 1e-6f, one);
            TestData.BitEqual(all.AsSpan(r * width, width), one, $"row {r}");
        }
    }

    [Fact]
    public void QkNorm_normalizes_each_head_separately()
    {
        const int tokens = 3, heads = 5, d = 24;
        var x = TestData.Random(tokens * heads * d, 21, -3f, 3f);
        var w = TestData.Random(d, 22, -0.5f, 0.5f);
        var g = RmsNorm.Gain(MemoryMarshal.AsBytes(w.AsSpan()), TensorDType.Float32, d, "q_norm");
        var y = TestData.Poisoned(x.Length);
        QkNorm.Forward(x, tokens, heads, d, g, 1e-6f, y);
        var (ry, _, _) = Reference(x, tokens * heads, d, w, 1e-6);
        TestData.Close(ry, y, 2e-6, "qk");
    }
}
