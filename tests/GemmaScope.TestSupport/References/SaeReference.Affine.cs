namespace GemmaScope.TestSupport;

public sealed partial class SaeReference
{
    /// <summary>
    /// b + x·W in float64 for each whole row of <paramref name="x"/>, W row-major [in, out] with out = |b| (the encoder's
    /// pre-activations with W_enc, b_enc; the decoder's output with W_dec, b_dec). Summed in input order, starting from b.
    /// Where <paramref name="magnitude"/> is given it receives |b| + Σ|x·W| per output, the scale of the rounding error a
    /// float32 kernel may make.
    /// </summary>
    public static double[] Affine(ReadOnlySpan<double> x, ReadOnlySpan<double> w, ReadOnlySpan<double> b, double[]? magnitude = null)
    {
        int nOut = b.Length, nIn = w.Length / nOut, rows = x.Length / nIn;
        Assert.Equal((long)nIn * nOut, w.Length);
        var y = new double[rows * nOut];
        for (int t = 0; t < rows; t++)
        {
            for (int o = 0; o < nOut; o++)
            {
                double s = b[o], mag = Math.Abs(b[o]);
                for (int i = 0; i < nIn; i++)
                {
                    double p = x[(t * nIn) + i] * w[(i * nOut) + o];
                    s += p;
                    mag += Math.Abs(p);
                }

                y[(t * nOut) + o] = s;
                if (magnitude is not null)
                {
                    magnitude[(t * nOut) + o] = mag;
                }
            }
        }

        return y;
    }

    /// <summary>The float64 decode of dense features (rows of d_sae) with the given W_dec [d_sae, d_in] and b_dec.</summary>
    public static double[] Decode(ReadOnlySpan<double> f, ReadOnlySpan<double> wDec, ReadOnlySpan<double> bDec) => Affine(f, wDec, bDec);
}
