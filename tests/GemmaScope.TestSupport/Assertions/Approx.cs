namespace GemmaScope.TestSupport;

/// <summary>Comparisons of float32 results with a float64 reference.</summary>
public static class Approx
{
    /// <summary>
    /// Asserts |actual − expected| ≤ tol · max(1, max |expected| of the row) element-wise, rows of <paramref name="width"/>
    /// elements (0: the whole span is one row). Infinities must match exactly (masked attention scores are −∞ in both), and
    /// a NaN in <paramref name="actual"/> always fails (outputs are poisoned with NaN before a run).
    /// </summary>
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double tol, string what, int width = 0)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        width = width == 0 ? Math.Max(1, expected.Length) : width;
        Assert.True(expected.Length % width == 0, $"{what}: length {expected.Length} is not a multiple of the row width {width}");
        for (int r = 0; r < expected.Length / width; r++)
        {
            var row = expected.Slice(r * width, width);
            double scale = 1;
            foreach (var e in row)
            {
                if (double.IsFinite(e))
                {
                    scale = Math.Max(scale, Math.Abs(e));
                }
            }

            double worst = 0;
            int at = -1;
            for (int j = 0; j < width; j++)
            {
                double e = row[j], a = actual[(r * width) + j];
                if (double.IsInfinity(e) || double.IsInfinity(a))
                {
                    Assert.True(e == a, $"{what}[row {r}, col {j}]: {a}, expected {e}");
                    continue;
                }

                double err = Math.Abs(a - e);
                if (!(err <= worst))
                {
                    worst = err;
                    at = j;
                }
            }

            Assert.True(worst <= tol * scale, $"{what}[row {r}, col {at}]: {actual[(r * width) + Math.Max(at, 0)]}, expected {row[Math.Max(at, 0)]}, error {worst:G3}, allowed {tol * scale:G3}");
        }
    }

    /// <summary>The same, for a float64 reference held in an array.</summary>
    public static void Close(ReadOnlySpan<float> actual, double[] expected, double tol, string what, int width = 0) =>
        Close(actual, expected.AsSpan(), tol, what, width);

    /// <summary>Widens float32 values to float64 (a float32 result used as the expected value of another path).</summary>
    public static double[] Widen(ReadOnlySpan<float> values)
    {
        var d = new double[values.Length];
        for (int i = 0; i < d.Length; i++)
        {
            d[i] = values[i];
        }

        return d;
    }
}
