using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// Random SAEs for the intervention tests, the same SAE as the core's <see cref="JumpReLUSae"/> and as the float64
/// <see cref="SaeReference"/>, and the edits the float64 reference makes where the model splices or steers.
/// </summary>
internal static class TestSaes
{
    /// <summary>A random JumpReLU SAE; thresholds small enough that some but not all features fire.</summary>
    public static SaeTensors Random(int dIn, int dSae, int seed)
    {
        var rng = new Random(seed);
        float N(double s) => (float)(s * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var wEnc = new float[dIn * dSae];
        var wDec = new float[dSae * dIn];
        for (int i = 0; i < wEnc.Length; i++)
        {
            wEnc[i] = N(1.0 / Math.Sqrt(dIn));
            wDec[i] = N(1.0 / Math.Sqrt(dSae));
        }

        var bEnc = Enumerable.Range(0, dSae).Select(_ => N(0.1)).ToArray();
        var threshold = Enumerable.Range(0, dSae).Select(_ => (float)(0.5 + rng.NextDouble())).ToArray();
        var bDec = Enumerable.Range(0, dIn).Select(_ => N(0.1)).ToArray();
        return SaeTensors.Create(dIn, dSae, wEnc, bEnc, threshold, wDec, bDec);
    }

    /// <summary>The same SAE as the core's <see cref="JumpReLUSae"/>, reading <paramref name="hookName"/> (or no site).</summary>
    public static JumpReLUSae ToCore(SaeTensors t, string? hookName = null) => JumpReLUSae.FromArrays(
        t.EncoderWeights.Span, t.DecoderWeights.Span, t.EncoderBias.Span, t.DecoderBias.Span, t.Threshold.Span, t.InputSize,
        new SaeLoadOptions { Config = new SaeConfig { HookName = hookName } });

    /// <summary>The float64 reference of the same SAE.</summary>
    public static SaeReference Reference(SaeTensors t) => SaeReference.Of(
        t.InputSize, t.FeatureCount, t.EncoderWeights.Span, t.EncoderBias.Span, t.Threshold.Span, t.DecoderWeights.Span, t.DecoderBias.Span);

    /// <summary>
    /// The splice in float64: each of the <paramref name="tokens"/> rows of <paramref name="x"/> becomes the reconstruction
    /// (with <paramref name="clamp"/> applied to the features, and plus the clean reconstruction's error with
    /// <paramref name="errorTerm"/>), in place; rows whose id in <paramref name="skipBosOf"/> is BOS (2) are left alone.
    /// </summary>
    public static void Splice(double[] x, int tokens, SaeTensors sae, IReadOnlyList<FeatureClamp>? clamp = null, bool errorTerm = false, int[]? skipBosOf = null)
    {
        var reference = Reference(sae);
        int d = reference.DIn, m = reference.DSae;
        var f = reference.Encode(x.AsSpan(0, tokens * d));
        var clean = reference.Decode(f);
        var clamped = (double[])f.Clone();
        for (int t = 0; t < tokens; t++)
        {
            foreach (var c in clamp ?? [])
            {
                clamped[(t * m) + c.Feature] = c.Value;
            }
        }

        var recon = reference.Decode(clamped);
        for (int t = 0; t < tokens; t++)
        {
            if (skipBosOf is not null && skipBosOf[t] == 2)
            {
                continue;
            }

            for (int k = t * d; k < (t + 1) * d; k++)
            {
                x[k] = errorTerm ? recon[k] + (x[k] - clean[k]) : recon[k];
            }
        }
    }

    /// <summary>Steering in float64: adds <paramref name="scale"/> × <paramref name="row"/> to every row of <paramref name="x"/>.</summary>
    public static void Steer(double[] x, ReadOnlySpan<float> row, double scale = 1)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] += scale * row[i % row.Length];
        }
    }
}
