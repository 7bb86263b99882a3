using System.Runtime.InteropServices;
using GemmaScope.Engine.Kernels;
using GemmaScope.Formats;

namespace GemmaScope.Engine.Tests.Kernels;

public class ElementwiseTests
{
    private static double GeluTanh(double x) => 0.5 * x * (1.0 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (x + (0.044715 * x * x * x))));

    [Theory]
    [InlineData(37)]
    [InlineData(9216 + 3)]
    [InlineData(5)]
    public void GeGlu_matches_float64_reference(int n)
    {
        var gate = TestData.Random(n, n, -6f, 6f);
        var up = TestData.Random(n, n + 1, -3f, 3f);
        gate[0] = 1e-5f;
        gate[1 % n] = -20f;
        var y = TestData.Poisoned(n);
        GeGlu.Forward(gate, up, y);
        var expected = new double[n];
        for (int i = 0; i < n; i++)
        {
            expected[i] = GeluTanh(gate[i]) * up[i];
        }

        TestData.Close(expected, y, 2e-6, "geglu");
    }

    [Fact]
    public void GeGlu_element_does_not_depend_on_its_place()
    {
        var gate = TestData.Random(53, 3, -5f, 5f);
        var up = TestData.Random(53, 4, -5f, 5f);
        var all = TestData.Poisoned(53);
        GeGlu.Forward(gate, up, all);
        for (int start = 1; start < 20; start += 3)
        {
            var part = TestData.Poisoned(53 - start);
            GeGlu.Forward(gate.AsSpan(start), up.AsSpan(start), part);
            TestData.BitEqual(all.AsSpan(start), part, $"offset {start}");
        }
    }

    [Theory]
    [InlineData(30f, 37)]
    [InlineData(50f, 1000)]
    public void SoftCap_matches_float64_reference(float cap, int n)
    {
        var x = TestData.Random(n, n, -8f * cap, 8f * cap);
        x[0] = 1e-6f;
        x[1] = -3e-3f;
        var expected = new double[n];
        for (int i = 0; i < n; i++)
        {
            expected[i] = Math.Tanh(x[i] / (double)cap) * cap;
        }

        SoftCap.Apply(x, cap);
        TestData.Close(expected, x, 1e-6, "softcap");
        Assert.All(x, v => Assert.InRange(v, -cap, cap));
    }

    [Fact]
    public void Tanh_is_accurate_near_zero_and_saturates()
    {
        float[] u = [0f, -0f, 1e-30f, -1e-8f, 5e-5f, 2e-4f, -0.3f, 9f, -40f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e-4f, -0.0999f, 20f, 0.75f, 3.5f];
        var y = (float[])u.Clone();
        SoftCap.Apply(y, 1f);
        for (int i = 0; i < u.Length; i++)
        {
            float expected = (float)Math.Tanh(u[i]);
            Assert.True(expected.Equals(y[i]), $"tanh({u[i]:R}): expected {expected:R}, got {y[i]:R}");
        }
    }

    [Theory]
    [InlineData(TensorDType.Float32, 37)]
    [InlineData(TensorDType.BFloat16, 37)]
    [InlineData(TensorDType.Float16, 24)]
    [InlineData(TensorDType.BFloat16, 2304)]
    public unsafe void Embedding_gathers_rows_and_scales_by_float32_sqrt_d(TensorDType dtype, int d)
    {
        const int vocab = 11;
        var values = TestData.Random(vocab * d, d, -1f, 1f);
        var stored = new float[values.Length];
        byte[] bytes = new byte[values.Length * (dtype == TensorDType.Float32 ? 4 : 2)];
        for (int i = 0; i < values.Length; i++)
        {
            switch (dtype)
            {
                case TensorDType.Float32:
                    stored[i] = values[i];
                    BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), values[i]);
                    break;
                case TensorDType.BFloat16:
                    ushort b = TestData.ToBf16(values[i]);
                    stored[i] = BitConverter.Int32BitsToSingle(b << 16);
                    BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), b);
                    break;
                default:
                    var h = (Half)values[i];
                    stored[i] = (float)h;
                    BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), BitConverter.HalfToUInt16Bits(h));
                    break;
            }
        }

        int[] ids = [3, 0, 10, 3, 7];
        var y = TestData.Poisoned(ids.Length * d);
        float scale = (float)Math.Sqrt(d);
        fixed (byte* p = bytes)
        {
            nint table = (nint)p;
            Embedding.Gather(table, dtype, vocab, d, ids, y);
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Gather(table, dtype, vocab, d, [1, vocab], new float[2 * d]));
            Assert.Contains("row 1", ex.Message);
        }

        for (int t = 0; t < ids.Length; t++)
        {
            for (int i = 0; i < d; i++)
            {
                // float × float is exact in float64; one rounding to float32 is the float32 product.
                float expected = (float)((double)stored[(ids[t] * d) + i] * scale);
                Assert.Equal(expected, y[(t * d) + i]);
            }
        }
    }

    [Fact]
    public void Embedding_scale_is_rounded_to_float32_before_the_multiply()
    {
        // √640 in float64 and float32 differ; Hugging Face multiplies by the float32 value.
        Assert.NotEqual(Math.Sqrt(640), (double)Embedding.Normalizer(640));
        Assert.Equal((float)Math.Sqrt(640), Embedding.Normalizer(640));
        Assert.Equal(48f, Embedding.Normalizer(2304));
    }

    [Fact]
    public void Widen_rejects_float64()
    {
        var w = new double[4];
        Assert.Throws<NotSupportedException>(() => FloatWiden.ToArray(MemoryMarshal.AsBytes(w.AsSpan()), TensorDType.Float64, 4, "w"));
    }
}
