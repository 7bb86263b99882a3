using GemmaScope.Kernels;

namespace GemmaScope;

/// <summary>
/// What <see cref="SaeLoadOptions.Screening"/> builds at load, for <see cref="ScreenedEncodeKernel"/>:
/// <list type="bullet">
/// <item>ŵ = s_j · q[i, j]: W_enc quantised to int8 per column (s_j = max_i |w_ij| / 127, q rounded to nearest),
/// packed for VNNI as groups of 8 columns: group g holds, for each k4 = i / 4, 8 columns × 4 consecutive rows
/// (32 bytes), so one 256-bit load feeds one vpdpbusd. Rows are padded to a multiple of 4 and columns to a multiple
/// of 32 with zero weights. d_in × d_sae bytes.</item>
/// <item>W_enc transposed (column j's d_in floats contiguous), for the exact fp32 recompute of candidates:
/// d_in × d_sae × 4 bytes.</item>
/// <item>Per column (padded): s_j, Σ_i q[i, j], E_j ≥ ‖w_j − ŵ_j‖₂, M_j ≥ max(‖w_j‖₂, ‖ŵ_j‖₂), C_j (the bias's
/// share of the rounding bound), bias and threshold (padding: 0 and +∞). Norms are summed in float64 and rounded up
/// to float32, so each stored bound is ≥ the real quantity.</item>
/// </list>
/// Memory: 1.25 × the fp32 W_enc (int8 copy + transposed copy) plus 28 bytes per feature. Immutable after load.
/// </summary>
internal sealed unsafe class ScreenedWeights : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    /// <summary>Columns per VNNI group (one 256-bit int32 accumulator).</summary>
    public const int GroupCols = 8;

    /// <summary>Columns per screening block (four groups).</summary>
    public const int BlockCols = 32;

    /// <summary>Largest d_in screened: keeps every int32 dot product of the screen (≤ 4·K4·255·127 + 128·127·d_in) below 2^31.</summary>
    public const int MaxInputSize = 32768;

    /// <summary>Most outlier dimensions per token computed in fp32 outside the int8 dot (see the kernel's bound).</summary>
    public const int MaxOutliers = 32;

    /// <summary>Unit roundoff of float32, 2^-24.</summary>
    public const double Unit = 5.9604644775390625E-08;

    /// <summary>2^-110: absolute allowance for roundings in the subnormal range (see the kernel's proof, step 5).</summary>
    public const double Eta = 7.7037197775489434E-34;

    private ScreenedWeights()
    {
    }

    public int DIn { get; private init; }

    public int DSae { get; private init; }

    /// <summary>d_in rounded up to a multiple of 4.</summary>
    public int KPad { get; private init; }

    /// <summary>d_sae rounded up to a multiple of <see cref="BlockCols"/>.</summary>
    public int MPad { get; private init; }

    /// <summary>Packed int8 weights, groups of <see cref="GroupCols"/> columns, each KPad × 8 bytes.</summary>
    public sbyte* Q { get; private init; }

    /// <summary>W_enc transposed: column j at WT + j·d_in.</summary>
    public float* WT { get; private init; }

    public float* Scale { get; private init; }

    public int* ColSum { get; private init; }

    public float* ErrNorm { get; private init; }

    public float* Norm { get; private init; }

    public float* BiasBound { get; private init; }

    public float* Bias { get; private init; }

    public float* Threshold { get; private init; }

    /// <summary>Largest <see cref="Norm"/>: a token with ‖x‖·MaxNorm above 1e30 is encoded by the dense kernel (no overflow in the screen).</summary>
    public float MaxNorm { get; private init; }

    /// <summary>Bytes this copy holds.</summary>
    public long Bytes { get; private init; }

    /// <summary>γ_k = k·u / (1 − k·u), u = 2^-24: Higham's bound on k float32 roundings.</summary>
    public static double Gamma(int k) => k * Unit / (1 - (k * Unit));

    /// <summary>Rounds a non-negative double up to a float32 that is ≥ it.</summary>
    public static float Up(double v)
    {
        float f = (float)v;
        return f >= v ? f : MathF.BitIncrement(f);
    }

    /// <summary>Frees the copies.</summary>
    public void Dispose()
    {
        foreach (var o in _owned)
        {
            o.Dispose();
        }
    }

    /// <summary>Builds the screening copy of an fp32 SAE (it owns its buffers).</summary>
    public static ScreenedWeights Build(in SaeWeights w, int maxThreads)
    {
        if (w.IsBFloat16 || w.WEnc == null)
        {
            throw new NotSupportedException("Screening needs float32 weights (SaePrecision.Float32): it promises the fp32 kernel's results");
        }

        if (w.DIn > MaxInputSize)
        {
            throw new NotSupportedException($"Screening supports d_in ≤ {MaxInputSize} (int32 accumulation bound); this SAE has d_in = {w.DIn}");
        }

        var owned = new List<IDisposable>();
        int n = w.DIn, m = w.DSae, kPad = (n + 3) & ~3, mPad = (m + BlockCols - 1) / BlockCols * BlockCols;
        T* Alloc<T>(long count)
            where T : unmanaged
        {
            var b = new NativeBuffer(Math.Max(count, 1) * sizeof(T));
            owned.Add(b);
            return (T*)b.Pointer;
        }

        sbyte* q = Alloc<sbyte>((long)kPad * mPad);
        float* wt = Alloc<float>((long)n * m);
        float* scale = Alloc<float>(mPad), errNorm = Alloc<float>(mPad), norm = Alloc<float>(mPad), biasBound = Alloc<float>(mPad);
        float* bias = Alloc<float>(mPad), thr = Alloc<float>(mPad);
        int* colSum = Alloc<int>(mPad);
        new Span<sbyte>(q, checked(kPad * mPad)).Clear();
        float* wEnc = w.WEnc, bEnc = w.BEnc, th = w.Threshold;
        long groupBytes = (long)kPad * GroupCols;

        // Column blocks in parallel: each worker reads its columns' segments of every row and owns their outputs.
        int blocks = mPad / BlockCols;
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, maxThreads) }, blk =>
        {
            int j0 = blk * BlockCols, cols = Math.Min(BlockCols, m - j0);
            Span<double> e2 = stackalloc double[BlockCols], n2 = stackalloc double[BlockCols], w2 = stackalloc double[BlockCols];
            Span<float> s = stackalloc float[BlockCols];
            Span<int> sum = stackalloc int[BlockCols];
            for (int c = 0; c < BlockCols; c++)
            {
                s[c] = 0f;
            }

            for (int i = 0; i < n; i++)
            {
                float* row = wEnc + ((long)i * m) + j0;
                for (int c = 0; c < cols; c++)
                {
                    s[c] = MathF.Max(s[c], MathF.Abs(row[c]));
                }
            }

            for (int c = 0; c < BlockCols; c++)
            {
                s[c] = c < cols ? s[c] / 127f : 0f;
            }

            for (int i = 0; i < n; i++)
            {
                float* row = wEnc + ((long)i * m) + j0;
                int k4 = i >> 2, tt = i & 3;
                for (int c = 0; c < cols; c++)
                {
                    float v = row[c];
                    int qi = s[c] == 0f ? 0 : (int)Math.Clamp(MathF.Round(v / s[c]), -127f, 127f);
                    int j = j0 + c;
                    q[((j / GroupCols) * groupBytes) + (k4 * 32) + ((j % GroupCols) * 4) + tt] = (sbyte)qi;
                    double wh = (double)s[c] * qi, d = v - wh;
                    e2[c] += d * d;
                    n2[c] += wh * wh;
                    w2[c] += (double)v * v;
                    sum[c] += qi;
                    wt[((long)j * n) + i] = v;
                }
            }

            // Covers the int8 screen ((γ_{n+1} + γ_35)·|b|) and the fp32 filter (2γ_{n+2}·|b| + u·|b|); see the kernel.
            double g = (2 * Gamma(n + 2)) + Gamma(MaxOutliers + 3) + Unit;
            for (int c = 0; c < BlockCols; c++)
            {
                int j = j0 + c;
                bool real = c < cols;
                scale[j] = s[c];
                colSum[j] = real ? sum[c] : 0;

                // The float64 sums carry relative error < 1e-12; the factor covers it before rounding up to float32.
                errNorm[j] = real ? Up(Math.Sqrt(e2[c]) * (1 + 1e-9)) : 0f;
                norm[j] = real ? Up(Math.Sqrt(Math.Max(n2[c], w2[c])) * (1 + 1e-9)) : 0f;
                bias[j] = real ? bEnc[j] : 0f;
                thr[j] = real ? th[j] : float.PositiveInfinity;
                biasBound[j] = real ? Up((g * Math.Abs(bEnc[j]) * (1 + 1e-6)) + Eta) : 0f;
            }
        });

        float maxNorm = 0f;
        for (int j = 0; j < m; j++)
        {
            maxNorm = MathF.Max(maxNorm, norm[j]);
        }

        var result = new ScreenedWeights
        {
            DIn = n,
            DSae = m,
            KPad = kPad,
            MPad = mPad,
            Q = q,
            WT = wt,
            Scale = scale,
            ColSum = colSum,
            ErrNorm = errNorm,
            Norm = norm,
            BiasBound = biasBound,
            Bias = bias,
            Threshold = thr,
            MaxNorm = maxNorm,
            Bytes = ((long)kPad * mPad) + ((long)n * m * 4) + (mPad * 28L),
        };
        result._owned.AddRange(owned);
        return result;
    }
}
