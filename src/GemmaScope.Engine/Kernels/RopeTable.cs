namespace GemmaScope.Engine.Kernels;

/// <summary>
/// RoPE frequencies of one layer kind (base θ, linear factor), and the cos/sin rows for any positions.
///   e_i   = (2i as float32) / d                                 (float32 division, i = 0 … d/2 − 1)
///   f_i   = 1 / θ^e_i                                           (θ^e_i computed in float64 and rounded to float32, then a float32 reciprocal)
///   f_i   = f_i / factor                                        (linear scaling, float32; factor 1 for "default")
///   a_p,i = (p as float32) · f_i                                (one float32 rounding, as Hugging Face's position · inv_freq matmul)
///   cos_p,i = cos(a_p,i), sin_p,i = sin(a_p,i)                  (float64 of the float32 angle, rounded once)
/// This is Hugging Face's order: <c>inv_freq = 1.0 / (base ** (arange(0, d, 2).float() / d))</c>, <c>inv_freq /= factor</c>
/// for linear scaling (dividing positions by the factor instead gives the same bits when the factor is a power of two,
/// as Gemma 3's 8 is), then <c>freqs = inv_freq.float() @ position_ids.float()</c> in float32 and <c>.cos()/.sin()</c>.
/// The angle is rounded to float32 first on purpose: at position 4,000 its float32 rounding moves cos by ~1e-4, and
/// matching the reference there matters more than a more exact angle. Hugging Face's cos/sin are within one ulp (Sleef);
/// ours are correctly rounded. Rows are d/2 wide: the second half of a head uses the same values (emb = cat(freqs, freqs)).
/// Immutable after construction; thread-safe.
/// </summary>
internal sealed class RopeTable
{
    private readonly float[] _invFreq;

    /// <param name="headDim">Head dimension d (even).</param>
    /// <param name="theta">RoPE base θ (<c>rope_theta</c>).</param>
    /// <param name="linearFactor">Linear <c>rope_scaling</c> factor; 1 for "default".</param>
    public RopeTable(int headDim, double theta, double linearFactor = 1.0)
    {
        if (headDim <= 0 || headDim % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "RoPE: head_dim must be positive and even.");
        }

        if (!(theta > 1.0) || double.IsInfinity(theta))
        {
            throw new ArgumentOutOfRangeException(nameof(theta), theta, "RoPE: rope_theta must be a finite number above 1.");
        }

        if (!(linearFactor > 0) || double.IsInfinity(linearFactor))
        {
            throw new ArgumentOutOfRangeException(nameof(linearFactor), linearFactor, "RoPE: the linear scaling factor must be positive and finite.");
        }

        HeadDim = headDim;
        Theta = theta;
        LinearFactor = linearFactor;
        _invFreq = new float[headDim / 2];
        float thetaF = (float)theta;
        float factorF = (float)linearFactor;
        for (int i = 0; i < _invFreq.Length; i++)
        {
            float e = (float)(2 * i) / headDim;
            float pow = (float)Math.Pow(thetaF, e);
            float f = 1f / pow;
            _invFreq[i] = f / factorF;
        }
    }

    /// <summary>Head dimension d.</summary>
    public int HeadDim { get; }

    /// <summary>RoPE base θ.</summary>
    public double Theta { get; }

    /// <summary>Linear scaling factor (1 = default RoPE).</summary>
    public double LinearFactor { get; }

    /// <summary>The d/2 float32 inverse frequencies, factor applied.</summary>
    public ReadOnlySpan<float> InverseFrequencies => _invFreq;

    /// <summary>
    /// Fills <paramref name="cos"/> and <paramref name="sin"/> ([positions.Length, d/2]) for the given absolute positions
    /// (any order, any values ≥ 0: a chunk after a KV cache passes its continuing positions).
    /// </summary>
    public void Fill(ReadOnlySpan<int> positions, Span<float> cos, Span<float> sin)
    {
        int half = _invFreq.Length;
        long size = (long)positions.Length * half;
        if (cos.Length != size || sin.Length != size)
        {
            throw new ArgumentException($"RoPE: cos/sin need {size} values ({positions.Length} positions × {half}), got {cos.Length} and {sin.Length}.");
        }

        for (int r = 0; r < positions.Length; r++)
        {
            int p = positions[r];
            if (p < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(positions), p, $"RoPE: position {r} is negative.");
            }

            float pf = p;
            var c = cos.Slice(r * half, half);
            var s = sin.Slice(r * half, half);
            for (int i = 0; i < half; i++)
            {
                double a = pf * _invFreq[i];
                c[i] = (float)Math.Cos(a);
                s[i] = (float)Math.Sin(a);
            }
        }
    }
}
