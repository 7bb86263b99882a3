namespace GemmaScope.TestSupport;

/// <summary>Plain float64 JumpReLU SAE, written from the definition, for checking the library.</summary>
public sealed class SaeReference
{
    public required int DIn { get; init; }

    public required int DSae { get; init; }

    public required double[] WEnc { get; init; }

    public required double[] WDec { get; init; }

    public required double[] BEnc { get; init; }

    public required double[] BDec { get; init; }

    public required double[] Threshold { get; init; }

    /// <summary>
    /// The SAE of the given float32 values (W_enc [d_in, d_sae], W_dec [d_sae, d_in], row-major), widened to float64: the
    /// reference for an SAE the library holds, built from the same numbers.
    /// </summary>
    public static SaeReference Of(int dIn, int dSae, ReadOnlySpan<float> wEnc, ReadOnlySpan<float> bEnc, ReadOnlySpan<float> threshold, ReadOnlySpan<float> wDec, ReadOnlySpan<float> bDec)
    {
        Assert.Equal((dIn * dSae, dSae, dSae, dSae * dIn, dIn), (wEnc.Length, bEnc.Length, threshold.Length, wDec.Length, bDec.Length));
        return new SaeReference
        {
            DIn = dIn,
            DSae = dSae,
            WEnc = Approx.Widen(wEnc),
            WDec = Approx.Widen(wDec),
            BEnc = Approx.Widen(bEnc),
            BDec = Approx.Widen(bDec),
            Threshold = Approx.Widen(threshold),
        };
    }

    public double[] Pre(ReadOnlySpan<float> x) => Pre(Approx.Widen(x));

    /// <summary>The pre-activations of float64 inputs (rows of d_in), in the same order of summation.</summary>
    public double[] Pre(ReadOnlySpan<double> x)
    {
        int tokens = x.Length / DIn;
        var pre = new double[tokens * DSae];
        for (int t = 0; t < tokens; t++)
        {
            for (int j = 0; j < DSae; j++)
            {
                double s = BEnc[j];
                for (int i = 0; i < DIn; i++)
                {
                    s += x[(t * DIn) + i] * WEnc[((long)i * DSae) + j];
                }

                pre[(t * DSae) + j] = s;
            }
        }

        return pre;
    }

    public double[] Encode(ReadOnlySpan<float> x) => Encode(Approx.Widen(x));

    /// <summary>The JumpReLU features of float64 inputs: pre where pre &gt; θ and pre &gt; 0, else 0.</summary>
    public double[] Encode(ReadOnlySpan<double> x)
    {
        var pre = Pre(x);
        for (int k = 0; k < pre.Length; k++)
        {
            double v = pre[k];
            pre[k] = v > Threshold[k % DSae] && v > 0 ? v : 0;
        }

        return pre;
    }

    public double[] Decode(ReadOnlySpan<double> f)
    {
        int tokens = f.Length / DSae;
        var x = new double[tokens * DIn];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < DIn; i++)
            {
                double s = BDec[i];
                for (int j = 0; j < DSae; j++)
                {
                    s += f[(t * DSae) + j] * WDec[((long)j * DIn) + i];
                }

                x[(t * DIn) + i] = s;
            }
        }

        return x;
    }

    /// <summary>A random SAE whose thresholds put roughly a third of pre-activations above them for unit-scale inputs.</summary>
    public static (SaeReference Ref, float[] WEnc, float[] WDec, float[] BEnc, float[] BDec, float[] Thr) Random(int dIn, int dSae, int seed)
    {
        var rng = new Random(seed);
        float G(double s) => (float)(s * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var wEnc = new float[dIn * dSae];
        var wDec = new float[dSae * dIn];
        var bEnc = new float[dSae];
        var bDec = new float[dIn];
        var thr = new float[dSae];
        for (int k = 0; k < wEnc.Length; k++)
        {
            wEnc[k] = G(1 / Math.Sqrt(dIn));
            wDec[k] = G(1 / Math.Sqrt(dSae));
        }

        for (int j = 0; j < dSae; j++)
        {
            bEnc[j] = G(0.1);
            thr[j] = (float)(0.05 + (0.6 * rng.NextDouble()));
        }

        for (int i = 0; i < dIn; i++)
        {
            bDec[i] = G(0.1);
        }

        var r = new SaeReference
        {
            DIn = dIn,
            DSae = dSae,
            WEnc = [.. wEnc.Select(v => (double)v)],
            WDec = [.. wDec.Select(v => (double)v)],
            BEnc = [.. bEnc.Select(v => (double)v)],
            BDec = [.. bDec.Select(v => (double)v)],
            Threshold = [.. thr.Select(v => (double)v)],
        };
        return (r, wEnc, wDec, bEnc, bDec, thr);
    }

    public static float[] RandomInput(int tokens, int dIn, int seed, double scale = 1.5)
    {
        var rng = new Random(seed);
        var x = new float[tokens * dIn];
        for (int k = 0; k < x.Length; k++)
        {
            x[k] = (float)(scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }

        return x;
    }

    public static float[] Poisoned(int n)
    {
        var a = new float[n];
        System.Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>
    /// Asserts |actual - expected| ≤ atol + rtol·scale where scale is the row's largest magnitude: float32 accumulation
    /// over d_in terms loses relative precision on results that cancel to near zero, so an element-relative bound would
    /// be wrong for them.
    /// </summary>
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rtol, string what, int row = 0)
    {
        Assert.Equal(expected.Length, actual.Length);
        row = row == 0 ? expected.Length : row;
        for (int r0 = 0; r0 < expected.Length; r0 += row)
        {
            double scale = 0;
            for (int k = r0; k < r0 + row; k++)
            {
                scale = Math.Max(scale, Math.Abs(expected[k]));
            }

            for (int k = r0; k < r0 + row; k++)
            {
                double err = Math.Abs(actual[k] - expected[k]);
                Assert.False(double.IsNaN(actual[k]), $"{what}[{k}] is NaN (never written?)");
                Assert.True(err <= 1e-6 + (rtol * scale), $"{what}[{k}]: expected {expected[k]}, actual {actual[k]}, error {err}");
            }
        }
    }
}
