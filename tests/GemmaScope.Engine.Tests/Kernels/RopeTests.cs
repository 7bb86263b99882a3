using GemmaScope.Engine.Kernels;

namespace GemmaScope.Engine.Tests.Kernels;

public class RopeTests
{
    // Independent float64 reference of Hugging Face's rotate-half RoPE with linear scaling (positions / factor).
    private static double[] Reference(float[] x, int[] positions, int heads, int d, double theta, double factor)
    {
        int half = d / 2;
        var y = new double[x.Length];
        for (int t = 0; t < positions.Length; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int o = ((t * heads) + h) * d;
                for (int i = 0; i < half; i++)
                {
                    double a = positions[t] / factor / Math.Pow(theta, 2.0 * i / d);
                    double c = Math.Cos(a), s = Math.Sin(a);
                    y[o + i] = (x[o + i] * c) - (x[o + i + half] * s);
                    y[o + i + half] = (x[o + i + half] * c) + (x[o + i] * s);
                }
            }
        }

        return y;
    }

    private static float[] Run(float[] x, int[] positions, int heads, int d, double theta, double factor)
    {
        var table = new RopeTable(d, theta, factor);
        var cos = TestData.Poisoned(positions.Length * d / 2);
        var sin = TestData.Poisoned(positions.Length * d / 2);
        table.Fill(positions, cos, sin);
        var y = TestData.Poisoned(x.Length);
        Rope.Apply(x, positions.Length, heads, d, cos, sin, y);
        return y;
    }

    [Theory]
    [InlineData(24, 5, 10000.0, 1.0)]
    [InlineData(256, 2, 10000.0, 1.0)]
    [InlineData(256, 2, 1000000.0, 8.0)]
    [InlineData(40, 3, 1000000.0, 3.0)]
    [InlineData(6, 1, 10000.0, 1.0)]
    public void Matches_float64_reference_at_arbitrary_positions(int d, int heads, double theta, double factor)
    {
        int[] positions = [0, 1, 5, 36, 7, 100, 127, 64];
        var x = TestData.Random(positions.Length * heads * d, d + heads);
        var y = Run(x, positions, heads, d, theta, factor);
        TestData.Close(Reference(x, positions, heads, d, theta, factor), y, 2e-5, "rope");
    }

    [Fact]
    public void Linear_scaling_moves_the_result_as_dividing_positions()
    {
        const int d = 24, heads = 2;
        int[] positions = [3, 50, 999];
        var x = TestData.Random(positions.Length * heads * d, 31);
        var plain = Run(x, positions, heads, d, 1e6, 1.0);
        var scaled = Run(x, positions, heads, d, 1e6, 8.0);
        Assert.NotEqual(plain[1], scaled[1]);
        TestData.Close(Reference(x, positions, heads, d, 1e6, 8.0), scaled, 2e-5, "scaled");

        // Factor 8 is a power of two: scaling inv_freq (Hugging Face) and dividing positions give the same bits.
        int[] divided = [0, 8, 16, 800];
        int[] original = [0, 64, 128, 6400];
        var xs = TestData.Random(divided.Length * heads * d, 32);
        TestData.BitEqual(Run(xs, divided, heads, d, 1e6, 1.0), Run(xs, original, heads, d, 1e6, 8.0), "power-of-two factor");
    }

    [Fact]
    public void Angle_is_rounded_to_float32_first_as_Hugging_Face()
    {
        // inv_freq in float32: 1 / (float)(θ ** ((float)(2i) / d)); angle = (float)p * inv_freq in float32.
        const int d = 256;
        var table = new RopeTable(d, 10000.0);
        int[] positions = [4000, 8191, 123457];
        var cos = new float[positions.Length * d / 2];
        var sin = new float[positions.Length * d / 2];
        table.Fill(positions, cos, sin);
        for (int t = 0; t < positions.Length; t++)
        {
            for (int i = 0; i < d / 2; i++)
            {
                float e = (float)(2 * i) / d;
                float inv = 1f / (float)Math.Pow(10000.0, e);
                float angle = positions[t] * inv;
                Assert.Equal((float)Math.Cos(angle), cos[(t * d / 2) + i]);
                Assert.Equal((float)Math.Sin(angle), sin[(t * d / 2) + i]);
            }
        }
    }

    [Fact]
    public void A_row_gives_the_same_bits_alone_and_in_a_batch_and_in_place()
    {
        const int d = 24, heads = 5;
        int[] positions = [9, 2, 40, 41, 3];
        var x = TestData.Random(positions.Length * heads * d, 41);
        var all = Run(x, positions, heads, d, 1e4, 1.0);
        for (int t = 0; t < positions.Length; t++)
        {
            var one = Run(x.AsSpan(t * heads * d, heads * d).ToArray(), [positions[t]], heads, d, 1e4, 1.0);
            TestData.BitEqual(all.AsSpan(t * heads * d, heads * d), one, $"row {t}");
        }

        var table = new RopeTable(d, 1e4);
        var cos = new float[positions.Length * d / 2];
        var sin = new float[positions.Length * d / 2];
        table.Fill(positions, cos, sin);
        var inPlace = (float[])x.Clone();
        Rope.Apply(inPlace, positions.Length, heads, d, cos, sin, inPlace);
        TestData.BitEqual(all, inPlace, "in place");
    }

    [Fact]
    public void Bad_arguments_are_named()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RopeTable(7, 1e4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RopeTable(8, 1e4, 0));
        var table = new RopeTable(8, 1e4);
        Assert.Throws<ArgumentException>(() => table.Fill([1, 2], new float[4], new float[8]));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.Fill([-1], new float[4], new float[4]));
    }
}
