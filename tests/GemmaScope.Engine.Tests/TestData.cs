namespace GemmaScope.Engine.Tests;

/// <summary>Random inputs (never zeros), NaN poison and float64 comparisons for the kernel tests.</summary>
internal static class TestData
{
    public static float[] Random(int n, int seed, float lo = -2f, float hi = 2f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = lo + ((hi - lo) * (float)rng.NextDouble());
        }

        return a;
    }

    public static float[] Poisoned(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>Asserts |actual − expected| ≤ tol · max(1, |expected|) everywhere (NaN in actual fails).</summary>
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i];
            double a = actual[i];
            double bound = tol * Math.Max(1.0, Math.Abs(e));
            if (!(Math.Abs(a - e) <= bound))
            {
                Assert.Fail($"{what}[{i}]: expected {e:R}, got {a:R} (|diff| {Math.Abs(a - e):E3} > {bound:E3}).");
            }
        }
    }

    public static void BitEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
            {
                Assert.Fail($"{what}[{i}]: {expected[i]:R} != {actual[i]:R}");
            }
        }
    }

    public static ushort ToBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }
}
