using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// Random SAEs and float64 references for the kernel tests. Inputs are uniform in [−1, 1), weights scaled by 1/√d_in,
/// thresholds uniform in [0, 0.4): with these, roughly a third of the latents fire, so both sides of the threshold are hit.
/// </summary>
internal sealed unsafe class KernelTestData : IDisposable
{
    // Build packed copies synchronously, so a test knows which path its call took (the background build has its own test).
    static KernelTestData() => PackedEncoderCache.BuildInBackground = false;

    public KernelTestData(int dIn, int dSae, bool bf16, int threads, int seed, bool pack = true)
    {
        DIn = dIn;
        DSae = dSae;
        var rng = new Random(seed);
        float scale = 1f / MathF.Sqrt(dIn);
        WEnc = Fill(rng, dIn * dSae, scale);
        WDec = Fill(rng, dSae * dIn, scale);
        BEnc = Fill(rng, dSae, 0.1f);
        BDec = Fill(rng, dIn, 0.1f);
        Threshold = new float[dSae];
        for (int j = 0; j < dSae; j++)
        {
            Threshold[j] = (float)(rng.NextDouble() * 0.4);
        }

        Sae = JumpReLUSae.FromArrays(WEnc, WDec, BEnc, BDec, Threshold, dIn, new SaeLoadOptions
        {
            Precision = bf16 ? SaePrecision.BFloat16 : SaePrecision.Float32,
            MaxDegreeOfParallelism = threads,
            PackEncoder = pack,
        });

        // The weights the kernels actually use: for bf16, the stored (rounded) values read back from the SAE.
        var w = Sae.Weights;
        UsedWEnc = new double[WEnc.Length];
        UsedWDec = new double[WDec.Length];
        for (int i = 0; i < WEnc.Length; i++)
        {
            UsedWEnc[i] = bf16 ? BFloat16.ToSingle(w.WEncBf16[i]) : w.WEnc[i];
            UsedWDec[i] = bf16 ? BFloat16.ToSingle(w.WDecBf16[i]) : w.WDec[i];
        }
    }

    public int DIn { get; }

    public int DSae { get; }

    public float[] WEnc { get; }

    public float[] WDec { get; }

    public float[] BEnc { get; }

    public float[] BDec { get; }

    public float[] Threshold { get; }

    public double[] UsedWEnc { get; }

    public double[] UsedWDec { get; }

    public JumpReLUSae Sae { get; }

    public static float[] Fill(Random rng, int n, float scale)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = (float)((rng.NextDouble() * 2) - 1) * scale;
        }

        return a;
    }

    public static float[] Poisoned(int n)
    {
        var a = new float[n];
        a.AsSpan().Fill(float.NaN);
        return a;
    }

    /// <summary>
    /// Checks encoder output against float64: pre = b + Σ x·W over <paramref name="weights"/>, and the JumpReLU of it.
    /// The allowed error is rel · (|b| + Σ|x·W|) + 1e-7; a latent whose reference pre-activation lies within that bound of
    /// its threshold (or of 0) may go either way, but must then be 0 or the pre-activation.
    /// </summary>
    public void CheckEncode(float[] x, int tokens, ReadOnlySpan<float> got, double[] weights, double rel)
    {
        int decided = 0, active = 0;
        for (int t = 0; t < tokens; t++)
        {
            for (int j = 0; j < DSae; j++)
            {
                double pre = BEnc[j], mag = Math.Abs(BEnc[j]);
                for (int i = 0; i < DIn; i++)
                {
                    double p = x[(t * DIn) + i] * weights[((long)i * DSae) + j];
                    pre += p;
                    mag += Math.Abs(p);
                }

                double tol = (rel * mag) + 1e-7;
                float g = got[(t * DSae) + j];
                Assert.False(float.IsNaN(g), $"token {t} latent {j}: NaN (output not written)");
                double thr = Math.Max(Threshold[j], 0.0);
                if (Math.Abs(pre - thr) <= tol)
                {
                    Assert.True(g == 0f || Math.Abs(g - pre) <= tol, $"token {t} latent {j}: got {g}, pre {pre} at threshold {thr}");
                    continue;
                }

                decided++;
                double want = pre > thr ? pre : 0.0;
                active += want != 0 ? 1 : 0;
                Assert.True(Math.Abs(g - want) <= tol, $"token {t} latent {j}: got {g}, want {want} (tol {tol:g3})");
            }
        }

        // The data must exercise both sides of the threshold, or the test proves little.
        Assert.InRange(active, decided / 20, decided - (decided / 20));
    }

    /// <summary>float64 decode of dense features with the given decoder weights.</summary>
    public double[] ReferenceDecode(float[] f, int tokens, double[] weights)
    {
        var xhat = new double[tokens * DIn];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < DIn; i++)
            {
                double s = BDec[i];
                for (int j = 0; j < DSae; j++)
                {
                    s += f[(t * DSae) + j] * weights[((long)j * DIn) + i];
                }

                xhat[(t * DIn) + i] = s;
            }
        }

        return xhat;
    }

    /// <summary>Random sparse features: about <paramref name="l0"/> positive values per token, rest exactly 0.</summary>
    public float[] SparseFeatures(int tokens, int l0, int seed)
    {
        var rng = new Random(seed);
        var f = new float[tokens * DSae];
        for (int t = 0; t < tokens; t++)
        {
            for (int k = 0; k < l0; k++)
            {
                f[(t * DSae) + rng.Next(DSae)] = 0.1f + (float)rng.NextDouble();
            }
        }

        return f;
    }

    public void Dispose() => Sae.Dispose();
}
