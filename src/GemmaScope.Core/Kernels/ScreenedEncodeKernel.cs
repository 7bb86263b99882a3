using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GemmaScope.Kernels;

/// <summary>
/// Exact screened encode: an int8 screen finds every feature that can fire, and only those are computed in fp32.
/// <para><b>Screen.</b> Per token, dimensions with |x_i| &gt; 6·rms(rest) (at most 32; two passes, LLM.int8 style) form
/// the outlier set O and are summed in fp32 against W_enc's rows; the rest R is quantised x̂_i = s_x·q_i,
/// s_x = max_R |x_i| / 127, q_i ∈ [−127, 127] (q_i = 0 on O), sent as u_i = q_i + 128 (u8). With the load-time
/// ŵ_ij = s_j·q_ij (see <see cref="ScreenedWeights"/>), vpdpbusd gives D'_j = Σ_i u_i q_ij exactly in int32, and
/// D_j = D'_j − 128·Σ_i q_ij = Σ_R q_i q_ij, so x̂_R·ŵ_j = s_x s_j D_j. The screened pre-activation is
///   P̃_j = fl( fl(s_x·s_j)·fl(D_j) + fl(b_j + Σ_O x_i w_ij) ).</para>
/// <para><b>Bound.</b> Let pre_j = b_j + Σ_i x_i w_ij (exact reals) and pre_j^d what the dense fp32 kernel returns
/// (any summation order). Then |pre_j^d − P̃_j| ≤ B_j, where
///   B_j = a·E_j + [c + γ_{n+1}·‖x‖ + γ_{|O|+3}·(a + c + ‖x_O‖)]·M_j + (γ_{n+1} + γ_35)·|b_j| + 2^-110,
/// a = ‖x_R‖, c = ‖x_R − x̂_R‖, E_j ≥ ‖w_j − ŵ_j‖, M_j ≥ max(‖w_j‖, ‖ŵ_j‖), γ_k = k·u/(1 − k·u), u = 2^-24. Proof:
///   (1) x_R·w_j − x̂_R·ŵ_j = x_R·(w_j − ŵ_j) + (x_R − x̂_R)·ŵ_j, so by Cauchy–Schwarz |…| ≤ a·E_j + c·M_j
///       (norms over R are at most the full-column norms).
///   (2) pre_j = b_j + Σ_O x_i w_ij + x_R·w_j, so |pre_j − (b_j + Σ_O x_i w_ij + s_x s_j D_j)| ≤ a·E_j + c·M_j.
///   (3) P̃_j is |O| + 1 FMAs and one product: b_j and each outlier term pass through ≤ |O| + 1 roundings, the product
///       s_x·s_j·D_j through 3 (s_x·s_j, int→float, the FMA), so P̃_j differs from that sum by ≤ γ_{|O|+3}·(|b_j| +
///       Σ_O |x_i w_ij| + |x̂_R·ŵ_j|) ≤ γ_{|O|+3}·(|b_j| + (‖x_O‖ + a + c)·M_j), as ‖x̂_R‖ ≤ a + c.
///   (4) The dense kernel computes n products, sums them and adds b_j in fp32 (FMA or not, any order): error
///       ≤ γ_{n+1}·(Σ|x_i w_ij| + |b_j|) ≤ γ_{n+1}·(‖x‖·M_j + |b_j|) (Higham, Accuracy and Stability, §3.1).
///   (5) Underflow: each rounding in the subnormal range adds ≤ 2^-150 absolute (≤ 2^-119 once multiplied by
///       |D| &lt; 2^31); n + 40 of them are below 2^-110.
/// Per-token scalars (a, c, ‖x‖, ‖x_O‖) are computed in float64 and rounded up to float32 with a 1e-6 relative
/// margin, which covers the two FMAs that evaluate B_j in float32 (all terms ≥ 0, so ≤ 2u relative).
/// <b>Candidates:</b> U_j = fl(P̃_j + B_j); feature j is recomputed iff U_j ≥ θ_j and U_j ≥ 0. Rounding is monotone,
/// so U_j &lt; θ_j implies P̃_j + B_j &lt; θ_j, hence pre_j^d ≤ P̃_j + B_j &lt; θ_j and the dense kernel outputs 0 for j
/// (likewise for 0). Every feature the dense kernel activates is therefore a candidate: no sampling, no exception.</para>
/// <para><b>fp32 filter.</b> Each candidate is then dotted in fp32 SIMD (any order) and kept only if its own proven
/// bound, 2γ_{n+2}·(‖x‖·M_j + |b_j|) (≈ 1e-4 relative instead of the int8 screen's ≈ 1e-2), still lets it reach
/// θ_j (see <see cref="Filter"/>); the same monotone-rounding argument makes every dense-active feature survive.</para>
/// <para><b>Recompute.</b> Each survivor is computed as the dense kernels do (GEMV and GEMM alike): one fp32 FMA
/// chain from 0 over i = 0 … n − 1, then + b_j, then JumpReLU, so its value is bitwise the dense kernel's.
/// Eight independent chains run interleaved to hide FMA latency. Tokens with a non-finite x, or ‖x‖·max M_j &gt; 1e30
/// (where float32 overflow could void the bound), send the whole call to the dense kernel.</para>
/// Thread-safe like <see cref="JumpReLUEncodeKernel"/>: per-calling-thread jobs, per-part buffers.
/// </summary>
internal static unsafe class ScreenedEncodeKernel
{
    /// <summary>Test switch: B_j is multiplied by this (1 in production). Tests set it below 1 to prove they catch a weakened bound.</summary>
    internal static float BoundScale { get; set; } = 1f;

    /// <summary>Test switch: the fp32 filter's bound is multiplied by this (1 in production).</summary>
    internal static float FilterBoundScale { get; set; } = 1f;

    [ThreadStatic]
    private static Job? _job;

    internal static long DiagScreen;
    internal static long DiagRecompute;

    /// <summary>Whether the int8 screen runs with AVX-VNNI at the current (possibly forced) width; otherwise portable code.</summary>
    public static bool UsesVnni => AvxVnni.IsSupported && KernelSelector.Current is KernelIsa.Vector512 or KernelIsa.Vector256;

    /// <summary>
    /// Whether screening runs at all: with VNNI, or when tests force a width (the portable screen is exact but slower
    /// than the dense kernel, so unforced machines without AVX-VNNI use the dense kernel; its results are the same).
    /// </summary>
    public static bool Enabled => UsesVnni || KernelSelector.ForcedIsa != KernelIsa.Auto;

    /// <summary>Dense encode (f is tokens × d_sae, overwritten) or sparse collection (f null); returns the job for the sparse merge, or null if the dense kernel ran.</summary>
    public static Job? Run(in SaeWeights w, ScreenedWeights s, float* x, int tokens, float* f, int maxThreads)
    {
        var job = _job ??= new Job();
        job.Prepare(w, s, x, tokens, f, maxThreads);
        KernelWorkers.Run(job.Prep, job.PrepParts);
        if (job.Fallback)
        {
            return null;
        }

        KernelWorkers.Run(job, job.Parts);
        return job;
    }

    /// <summary>int8-screen candidates in the last call on this thread (all parts), for benchmarks.</summary>
    public static long LastCandidates => _job?.Candidates ?? 0;

    /// <summary>Of those, the ones the fp32 filter kept for the exact sequential recompute.</summary>
    public static long LastRecomputed => _job?.Recomputed ?? 0;

    /// <summary>Sparse encode of a batch; null when the dense kernel must be used instead.</summary>
    public static SparseFeatureBatch? EncodeSparse(in SaeWeights w, ScreenedWeights s, float* x, int tokens, int maxThreads)
    {
        var offsets = new int[tokens + 1];
        if (tokens == 0)
        {
            return SparseFeatureBatch.FromTrusted(w.DSae, offsets, [], []);
        }

        var job = Run(w, s, x, tokens, null, maxThreads);
        if (job is null)
        {
            return null;
        }

        var counts = offsets.AsSpan(1);
        for (int p = 0; p < job.Parts; p++)
        {
            foreach (int t in job.Sinks[p].Tokens)
            {
                counts[t]++;
            }
        }

        for (int t = 0; t < tokens; t++)
        {
            offsets[t + 1] += offsets[t];
        }

        var indices = GC.AllocateUninitializedArray<int>(offsets[tokens]);
        var values = GC.AllocateUninitializedArray<float>(offsets[tokens]);
        var cursor = offsets.AsSpan(0, tokens).ToArray();

        // Parts cover increasing column ranges, each listing a token's features in increasing order.
        for (int p = 0; p < job.Parts; p++)
        {
            var sk = job.Sinks[p];
            var ts = sk.Tokens;
            var fs = sk.Features;
            var vs = sk.Values;
            for (int q = 0; q < ts.Length; q++)
            {
                int at = cursor[ts[q]]++;
                indices[at] = fs[q];
                values[at] = vs[q];
            }
        }

        return SparseFeatureBatch.FromTrusted(w.DSae, offsets, indices, values);
    }

    /// <summary>One token into caller spans: L0, −L0 if they are too short, or int.MinValue when the dense kernel must be used.</summary>
    public static int EncodeSparseToken(in SaeWeights w, ScreenedWeights s, float* x, Span<int> indices, Span<float> values, int maxThreads)
    {
        var job = Run(w, s, x, 1, null, maxThreads);
        if (job is null)
        {
            return int.MinValue;
        }

        int n = 0, cap = Math.Min(indices.Length, values.Length);
        for (int p = 0; p < job.Parts; p++)
        {
            var sk = job.Sinks[p];
            var fs = sk.Features;
            var vs = sk.Values;
            for (int q = 0; q < fs.Length; q++, n++)
            {
                if (n < cap)
                {
                    indices[n] = fs[q];
                    values[n] = vs[q];
                }
            }
        }

        return n <= cap ? n : -n;
    }

    /// <summary>One call: phase 1 quantises tokens (<see cref="Prep"/>), phase 2 screens and recomputes column blocks.</summary>
    internal sealed class Job : KernelJob
    {
        private PartState[] _states = [];
        private SparseCollector[] _sinks = [];
        private byte[] _xq = [];
        private float[] _tok = [];
        private int[] _outIdx = [];
        private float[] _outVal = [];
        private int[] _outCount = [];

        public Job() => Prep = new PrepJob(this);

        public PrepJob Prep { get; }

        public SaeWeights W { get; private set; }

        public ScreenedWeights S { get; private set; } = null!;

        public float* X { get; private set; }

        public float* F { get; private set; }

        public int Tokens { get; private set; }

        public int Parts { get; private set; }

        public int PrepParts { get; private set; }

        public bool Vnni { get; private set; }

        public volatile bool Fallback;

        public SparseCollector[] Sinks => _sinks;

        public long Candidates
        {
            get
            {
                long c = 0;
                for (int p = 0; p < Parts; p++)
                {
                    c += _states[p].Candidates;
                }

                return c;
            }
        }

        public long Recomputed
        {
            get
            {
                long c = 0;
                for (int p = 0; p < Parts; p++)
                {
                    c += _states[p].Recomputed;
                }

                return c;
            }
        }

        /// <summary>Per token: s_x, k1, k2, k3 (4 floats).</summary>
        public float[] Tok => _tok;

        public byte[] Xq => _xq;

        public int[] OutIdx => _outIdx;

        public float[] OutVal => _outVal;

        public int[] OutCount => _outCount;

        public void Prepare(in SaeWeights w, ScreenedWeights s, float* x, int tokens, float* f, int maxThreads)
        {
            W = w;
            S = s;
            X = x;
            F = f;
            Tokens = tokens;
            Fallback = false;
            Vnni = UsesVnni;
            int blocks = s.MPad / ScreenedWeights.BlockCols;
            Parts = Math.Clamp(maxThreads, 1, blocks);
            PrepParts = Math.Clamp(Math.Min(maxThreads, tokens / 8), 1, Math.Max(1, tokens));
            Grow(ref _xq, (long)tokens * s.KPad);
            Grow(ref _tok, tokens * 4L);
            Grow(ref _outIdx, (long)tokens * ScreenedWeights.MaxOutliers);
            Grow(ref _outVal, (long)tokens * ScreenedWeights.MaxOutliers);
            Grow(ref _outCount, tokens);
            if (_states.Length < Parts)
            {
                int old = _states.Length;
                Array.Resize(ref _states, Parts);
                Array.Resize(ref _sinks, Parts);
                for (int i = old; i < Parts; i++)
                {
                    _states[i] = new PartState();
                    _sinks[i] = new SparseCollector();
                }
            }

            for (int i = 0; i < Parts; i++)
            {
                _sinks[i].Clear();
                _states[i].Candidates = 0;
                _states[i].Recomputed = 0;
            }
        }

        private static void Grow<T>(ref T[] a, long n)
        {
            if (a.Length < n)
            {
                a = new T[checked((int)n)];
            }
        }

        public override void Execute(int part, int parts)
        {
            int blocks = S.MPad / ScreenedWeights.BlockCols;
            var (b0, b1) = Share(blocks, part, parts);
            var st = _states[part];
            var sink = F == null ? _sinks[part] : null;
            int j0 = b0 * ScreenedWeights.BlockCols, j1 = Math.Min(b1 * ScreenedWeights.BlockCols, S.DSae);
            if (F != null && j1 > j0)
            {
                for (int t = 0; t < Tokens; t++)
                {
                    new Span<float>(F + ((long)t * W.DSae) + j0, j1 - j0).Clear();
                }
            }

            fixed (byte* xq = _xq)
            fixed (float* tok = _tok)
            fixed (int* oi = _outIdx)
            fixed (float* ov = _outVal)
            fixed (int* oc = _outCount)
            {
                var ctx = new Ctx(W, S, X, F, Tokens, xq, tok, oi, ov, oc);
                for (int b = b0; b < b1; b++)
                {
                    long T0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    st.Block.Clear();
                    if (Vnni)
                    {
                        ScreenBlockVnni(ctx, b, st.Block);
                    }
                    else
                    {
                        ScreenBlockPortable(ctx, b, st.Block);
                    }

                    st.AppendSortedByColumn(b * ScreenedWeights.BlockCols);
                    long T1 = System.Diagnostics.Stopwatch.GetTimestamp();
                    Interlocked.Add(ref DiagScreen, T1 - T0);
                    if (st.Pending.Count >= 256 || b == b1 - 1)
                    {
                        st.Candidates += st.Pending.Count;
                        Recompute(ctx, st.Pending, sink);
                        st.Recomputed += st.Pending.Count;
                        st.Pending.Clear();
                        Interlocked.Add(ref DiagRecompute, System.Diagnostics.Stopwatch.GetTimestamp() - T1);
                    }
                }
            }
        }
    }

    /// <summary>Phase 1: per token, outliers, quantisation and the bound's scalars.</summary>
    internal sealed class PrepJob(Job owner) : KernelJob
    {
        public override void Execute(int part, int parts)
        {
            var (t0, t1) = Share(owner.Tokens, part, parts);
            var s = owner.S;
            fixed (byte* xq = owner.Xq)
            fixed (float* tok = owner.Tok)
            fixed (int* oi = owner.OutIdx)
            fixed (float* ov = owner.OutVal)
            fixed (int* oc = owner.OutCount)
            {
                for (int t = t0; t < t1; t++)
                {
                    if (!QuantizeToken(owner.X + ((long)t * s.DIn), s, xq + ((long)t * s.KPad), tok + (4 * t),
                        oi + (t * ScreenedWeights.MaxOutliers), ov + (t * ScreenedWeights.MaxOutliers), out oc[t]))
                    {
                        owner.Fallback = true;
                    }
                }
            }
        }
    }

    /// <summary>Outliers, u8 quantisation and (s_x, k1, k2) of one token; false if it must go to the dense kernel.</summary>
    internal static bool QuantizeToken(float* x, ScreenedWeights s, byte* u, float* tok, int* outIdx, float* outVal, out int outCount)
    {
        int n = s.DIn;
        outCount = 0;
        double ss = 0;
        for (int i = 0; i < n; i++)
        {
            double v = x[i];
            ss += v * v;
        }

        double xn = Math.Sqrt(ss);
        if (!double.IsFinite(xn) || xn * s.MaxNorm > 1e30)
        {
            return false;
        }

        // Outliers: |x_i| > 6·rms, then 6·rms of the rest; raised until at most MaxOutliers remain. The choice only
        // affects tightness, never correctness (the bound holds for any split).
        double cut = 6 * Math.Sqrt(ss / n), rest = 0;
        int restN = 0;
        for (int i = 0; i < n; i++)
        {
            double v = Math.Abs(x[i]);
            if (v <= cut)
            {
                rest += v * v;
                restN++;
            }
        }

        if (restN < n)
        {
            cut = 6 * Math.Sqrt(rest / Math.Max(1, restN));
        }

        int count;
        while (true)
        {
            count = 0;
            for (int i = 0; i < n; i++)
            {
                count += Math.Abs(x[i]) > cut ? 1 : 0;
            }

            if (count <= ScreenedWeights.MaxOutliers)
            {
                break;
            }

            cut *= 1.5;
        }

        float maxR = 0f;
        for (int i = 0; i < n; i++)
        {
            float v = MathF.Abs(x[i]);
            if (v > cut)
            {
                outIdx[outCount] = i;
                outVal[outCount] = x[i];
                outCount++;
            }
            else
            {
                maxR = MathF.Max(maxR, v);
            }
        }

        float sx = maxR / 127f;
        float inv = sx > 0f && float.IsFinite(1f / sx) ? 1f / sx : 0f;
        double a2 = 0, c2 = 0, o2 = 0;
        int k = 0;
        for (int i = 0; i < n; i++)
        {
            float v = x[i];
            int q = 0;
            if (k < outCount && outIdx[k] == i)
            {
                k++;
                o2 += (double)v * v;
            }
            else
            {
                q = inv == 0f ? 0 : (int)Math.Clamp(MathF.Round(v * inv), -127f, 127f);
                double d = v - ((double)sx * q);
                a2 += (double)v * v;
                c2 += d * d;
            }

            u[i] = (byte)(q + 128);
        }

        for (int i = n; i < s.KPad; i++)
        {
            u[i] = 128;
        }

        double a = Math.Sqrt(a2) * (1 + 1e-9), c = Math.Sqrt(c2) * (1 + 1e-9), xo = Math.Sqrt(o2) * (1 + 1e-9);
        double k2 = c + (ScreenedWeights.Gamma(n + 1) * xn * (1 + 1e-9)) + (ScreenedWeights.Gamma(outCount + 3) * (a + c + xo));
        tok[0] = sx;
        tok[1] = ScreenedWeights.Up(a * (1 + 1e-6));
        tok[2] = ScreenedWeights.Up(k2 * (1 + 1e-6));
        tok[3] = ScreenedWeights.Up(2 * ScreenedWeights.Gamma(n + 2) * xn * (1 + 1e-6));
        return true;
    }

    /// <summary>Pointers of one call, passed by value into the block routines.</summary>
    private readonly struct Ctx(in SaeWeights w, ScreenedWeights s, float* x, float* f, int tokens, byte* xq, float* tok, int* outIdx, float* outVal, int* outCount)
    {
        public readonly SaeWeights W = w;
        public readonly ScreenedWeights S = s;
        public readonly float* X = x;
        public readonly float* F = f;
        public readonly int Tokens = tokens;
        public readonly byte* Xq = xq;
        public readonly float* Tok = tok;
        public readonly int* OutIdx = outIdx;
        public readonly float* OutVal = outVal;
        public readonly int* OutCount = outCount;
    }

    /// <summary>Screens one 32-column block for all tokens with vpdpbusd, four tokens per register tile.</summary>
    private static void ScreenBlockVnni(in Ctx c, int block, CandidateList cands)
    {
        var s = c.S;
        int k4n = s.KPad / 4;
        long groupBytes = (long)s.KPad * ScreenedWeights.GroupCols;
        sbyte* qb = s.Q + (block * 4 * groupBytes);
        int* d = stackalloc int[4 * ScreenedWeights.BlockCols];
        for (int t0 = 0; t0 < c.Tokens; t0 += 4)
        {
            byte* xt = c.Xq + ((long)t0 * s.KPad);
            switch (c.Tokens - t0)
            {
                case 1:
                    TileVnni<Rows1>(xt, s.KPad, qb, groupBytes, k4n, d);
                    break;
                case 2:
                    TileVnni<Rows2>(xt, s.KPad, qb, groupBytes, k4n, d);
                    break;
                case 3:
                    TileVnni<Rows3>(xt, s.KPad, qb, groupBytes, k4n, d);
                    break;
                default:
                    TileVnni<Rows4>(xt, s.KPad, qb, groupBytes, k4n, d);
                    break;
            }

            int rows = Math.Min(4, c.Tokens - t0);
            for (int r = 0; r < rows; r++)
            {
                Epilogue(c, t0 + r, block * ScreenedWeights.BlockCols, d + (r * ScreenedWeights.BlockCols), cands);
            }
        }
    }

    /// <summary>D'[r, 0..32) = Σ_k u[r, k]·q[k, 32 columns] for up to four token rows: 4 × rows int32 accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileVnni<TRows>(byte* x, int ldx, sbyte* q, long groupBytes, int k4n, int* d)
        where TRows : IRowCount
    {
        var a00 = Vector256<int>.Zero; var a01 = a00; var a02 = a00; var a03 = a00;
        var a10 = a00; var a11 = a00; var a12 = a00; var a13 = a00;
        var a20 = a00; var a21 = a00; var a22 = a00; var a23 = a00;
        var a30 = a00; var a31 = a00; var a32 = a00; var a33 = a00;
        sbyte* q0 = q, q1 = q + groupBytes, q2 = q1 + groupBytes, q3 = q2 + groupBytes;
        byte* x0 = x, x1 = x + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
        for (int k = 0; k < k4n; k++)
        {
            var w0 = Vector256.Load(q0 + (k * 32));
            var w1 = Vector256.Load(q1 + (k * 32));
            var w2 = Vector256.Load(q2 + (k * 32));
            var w3 = Vector256.Load(q3 + (k * 32));
            var u = Vector256.Create(*(int*)(x0 + (k * 4))).AsByte();
            a00 = AvxVnni.MultiplyWideningAndAdd(a00, u, w0); a01 = AvxVnni.MultiplyWideningAndAdd(a01, u, w1);
            a02 = AvxVnni.MultiplyWideningAndAdd(a02, u, w2); a03 = AvxVnni.MultiplyWideningAndAdd(a03, u, w3);
            if (TRows.Rows > 1)
            {
                u = Vector256.Create(*(int*)(x1 + (k * 4))).AsByte();
                a10 = AvxVnni.MultiplyWideningAndAdd(a10, u, w0); a11 = AvxVnni.MultiplyWideningAndAdd(a11, u, w1);
                a12 = AvxVnni.MultiplyWideningAndAdd(a12, u, w2); a13 = AvxVnni.MultiplyWideningAndAdd(a13, u, w3);
            }

            if (TRows.Rows > 2)
            {
                u = Vector256.Create(*(int*)(x2 + (k * 4))).AsByte();
                a20 = AvxVnni.MultiplyWideningAndAdd(a20, u, w0); a21 = AvxVnni.MultiplyWideningAndAdd(a21, u, w1);
                a22 = AvxVnni.MultiplyWideningAndAdd(a22, u, w2); a23 = AvxVnni.MultiplyWideningAndAdd(a23, u, w3);
            }

            if (TRows.Rows > 3)
            {
                u = Vector256.Create(*(int*)(x3 + (k * 4))).AsByte();
                a30 = AvxVnni.MultiplyWideningAndAdd(a30, u, w0); a31 = AvxVnni.MultiplyWideningAndAdd(a31, u, w1);
                a32 = AvxVnni.MultiplyWideningAndAdd(a32, u, w2); a33 = AvxVnni.MultiplyWideningAndAdd(a33, u, w3);
            }
        }

        a00.Store(d); a01.Store(d + 8); a02.Store(d + 16); a03.Store(d + 24);
        if (TRows.Rows > 1)
        {
            a10.Store(d + 32); a11.Store(d + 40); a12.Store(d + 48); a13.Store(d + 56);
        }

        if (TRows.Rows > 2)
        {
            a20.Store(d + 64); a21.Store(d + 72); a22.Store(d + 80); a23.Store(d + 88);
        }

        if (TRows.Rows > 3)
        {
            a30.Store(d + 96); a31.Store(d + 104); a32.Store(d + 112); a33.Store(d + 120);
        }
    }

    /// <summary>Portable screen (no VNNI): the same integer dot products, one token and column at a time.</summary>
    private static void ScreenBlockPortable(in Ctx c, int block, CandidateList cands)
    {
        var s = c.S;
        int k4n = s.KPad / 4;
        long groupBytes = (long)s.KPad * ScreenedWeights.GroupCols;
        int* d = stackalloc int[ScreenedWeights.BlockCols];
        for (int t = 0; t < c.Tokens; t++)
        {
            byte* u = c.Xq + ((long)t * s.KPad);
            for (int col = 0; col < ScreenedWeights.BlockCols; col++)
            {
                sbyte* q = s.Q + (((block * 4) + (col / 8)) * groupBytes) + ((col % 8) * 4);
                int acc = 0;
                for (int k = 0; k < k4n; k++)
                {
                    sbyte* qk = q + (k * 32);
                    byte* uk = u + (k * 4);
                    acc += (uk[0] * qk[0]) + (uk[1] * qk[1]) + (uk[2] * qk[2]) + (uk[3] * qk[3]);
                }

                d[col] = acc;
            }

            EpilogueScalar(c, t, block * ScreenedWeights.BlockCols, d, cands);
        }
    }

    /// <summary>Screened pre-activation, bound and candidate test for one token over 32 columns (AVX2 lanes).</summary>
    private static void Epilogue(in Ctx c, int t, int j0, int* d, CandidateList cands)
    {
        var s = c.S;
        if (!Avx2.IsSupported || j0 + ScreenedWeights.BlockCols > s.DSae)
        {
            EpilogueScalar(c, t, j0, d, cands);
            return;
        }

        float* tok = c.Tok + (4 * t);
        var sx = Vector256.Create(tok[0]);
        var k1 = Vector256.Create(tok[1]);
        var k2 = Vector256.Create(tok[2]);
        var scale = Vector256.Create(BoundScale);
        int nOut = c.OutCount[t];
        int* oi = c.OutIdx + (t * ScreenedWeights.MaxOutliers);
        float* ov = c.OutVal + (t * ScreenedWeights.MaxOutliers);
        long m = s.DSae;
        for (int g = 0; g < ScreenedWeights.BlockCols; g += 8)
        {
            int j = j0 + g;
            var dd = Vector256.Load(d + g) - (Vector256.Load(s.ColSum + j) << 7);
            var acc = Vector256.Load(s.Bias + j);
            for (int o = 0; o < nOut; o++)
            {
                acc = Vector256.FusedMultiplyAdd(Vector256.Create(ov[o]), Vector256.Load(c.W.WEnc + (oi[o] * m) + j), acc);
            }

            var pre = Vector256.FusedMultiplyAdd(sx * Vector256.Load(s.Scale + j), Vector256.ConvertToSingle(dd), acc);
            var bound = Vector256.FusedMultiplyAdd(k1, Vector256.Load(s.ErrNorm + j),
                Vector256.FusedMultiplyAdd(k2, Vector256.Load(s.Norm + j), Vector256.Load(s.BiasBound + j))) * scale;
            var up = pre + bound;
            uint mask = (Vector256.GreaterThanOrEqual(up, Vector256.Load(s.Threshold + j)) & Vector256.GreaterThanOrEqual(up, Vector256<float>.Zero)).ExtractMostSignificantBits();
            while (mask != 0)
            {
                int b = System.Numerics.BitOperations.TrailingZeroCount(mask);
                cands.Add(t, j + b);
                mask &= mask - 1;
            }
        }
    }

    /// <summary><see cref="Epilogue"/> one column at a time (last partial block, portable path).</summary>
    private static void EpilogueScalar(in Ctx c, int t, int j0, int* d, CandidateList cands)
    {
        var s = c.S;
        float* tok = c.Tok + (4 * t);
        int nOut = c.OutCount[t];
        int* oi = c.OutIdx + (t * ScreenedWeights.MaxOutliers);
        float* ov = c.OutVal + (t * ScreenedWeights.MaxOutliers);
        long m = s.DSae;
        int cols = Math.Min(ScreenedWeights.BlockCols, s.DSae - j0);
        for (int col = 0; col < cols; col++)
        {
            int j = j0 + col;
            float acc = s.Bias[j];
            for (int o = 0; o < nOut; o++)
            {
                acc = MathF.FusedMultiplyAdd(ov[o], c.W.WEnc[(oi[o] * m) + j], acc);
            }

            float pre = MathF.FusedMultiplyAdd(tok[0] * s.Scale[j], d[col] - (128 * s.ColSum[j]), acc);
            float bound = MathF.FusedMultiplyAdd(tok[1], s.ErrNorm[j], MathF.FusedMultiplyAdd(tok[2], s.Norm[j], s.BiasBound[j])) * BoundScale;
            float up = pre + bound;
            if (up >= s.Threshold[j] && up >= 0f)
            {
                cands.Add(t, j);
            }
        }
    }

    /// <summary>Exact fp32 recompute of the candidates, eight FMA chains at a time, then emission in list order.</summary>
    private static void Recompute(in Ctx c, CandidateList p, SparseCollector? sink)
    {
        var s = c.S;
        int n = s.DIn, count = p.Count;
        int[] ts = p.TokensArray, js = p.FeaturesArray;
        float[] vs = p.ValuesArray;
        fixed (int* tp = ts)
        fixed (int* jp = js)
        fixed (float* vp = vs)
        {
            count = Filter(c, tp, jp, count);
            p.Count = count;
            float* r = stackalloc float[8];
            long* xo = stackalloc long[8];
            long* wo = stackalloc long[8];
            for (int q = 0; q < count; q += 8)
            {
                int g = Math.Min(8, count - q);
                int* tq = tp + q, jq = jp + q;
                bool sameT = true, sameJ = true;
                for (int e = 1; e < g; e++)
                {
                    sameT &= tq[e] == tq[0];
                    sameJ &= jq[e] == jq[0];
                }

                // Short groups repeat their last pair (computed twice, stored once).
                for (int e = 0; e < 8; e++)
                {
                    int ee = Math.Min(e, g - 1);
                    xo[e] = (long)tq[ee] * n;
                    wo[e] = (long)jq[ee] * n;
                }

                if (sameT)
                {
                    ChainsSharedX(c.X + xo[0], s.WT, wo, n, r);
                }
                else if (sameJ)
                {
                    ChainsSharedW(c.X, xo, s.WT + wo[0], n, r);
                }
                else
                {
                    ChainsGeneral(c.X, xo, s.WT, wo, n, r);
                }

                for (int e = 0; e < g; e++)
                {
                    int j = jq[e];
                    float v = r[e] + s.Bias[j];
                    vp[q + e] = v > s.Threshold[j] && v > 0f ? v : 0f;
                }
            }

            for (int q = 0; q < count; q++)
            {
                float v = vp[q];
                if (v == 0f)
                {
                    continue;
                }

                if (sink is null)
                {
                    c.F[((long)tp[q] * s.DSae) + jp[q]] = v;
                }
                else
                {
                    sink.Add(tp[q], jp[q], v);
                }
            }
        }
    }

    /// <summary>
    /// Second, fp32 screen of the int8 candidates, in place (order kept): v = x_t·w_j as a SIMD dot product in any
    /// order, so |v − Σ x_i w_ij| ≤ γ_n·Σ|x_i w_ij| and, with the dense kernel's own γ_{n+1}, |pre^d − (v + b_j)| ≤
    /// 2γ_{n+2}·(‖x‖·M_j + |b_j|) (k3 = 2γ_{n+2}·‖x‖ per token, the |b_j| share inside BiasBound). The rounding of
    /// fl(v + b_j) adds ≤ u·(|v| + |b_j|), covered by 2u·|v| and BiasBound. A pair survives iff
    /// fl(fl(v + b_j) + bound) ≥ θ_j and ≥ 0 (monotone rounding, as in the int8 screen). Only survivors take the
    /// sequential chain; most int8 candidates are rejected here at a tenth of its cost.
    /// </summary>
    private static int Filter(in Ctx c, int* tp, int* jp, int count)
    {
        var s = c.S;
        int n = s.DIn, kept = 0;
        float scale = FilterBoundScale;
        for (int q = 0; q < count; q++)
        {
            int t = tp[q], j = jp[q];
            float v = Dot(c.X + ((long)t * n), s.WT + ((long)j * n), n);
            float bound = (MathF.FusedMultiplyAdd(c.Tok[(4 * t) + 3], s.Norm[j], s.BiasBound[j]) + (2.4e-7f * MathF.Abs(v))) * scale;
            float up = (v + s.Bias[j]) + bound;
            if (up >= s.Threshold[j] && up >= 0f)
            {
                tp[kept] = t;
                jp[kept] = j;
                kept++;
            }
        }

        return kept;
    }

    /// <summary>Σ x_i·w_i in any order (four SIMD accumulators, then a reduction and a scalar tail).</summary>
    private static float Dot(float* x, float* w, int n)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 64)
        {
            var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            for (; i + 64 <= n; i += 64)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(w + i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 16), Vector512.Load(w + i + 16), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 32), Vector512.Load(w + i + 32), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + i + 48), Vector512.Load(w + i + 48), a3);
            }

            sum = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            for (; i + 32 <= n; i += 32)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(w + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(w + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 16), Vector256.Load(w + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 24), Vector256.Load(w + i + 24), a3);
            }

            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }

        for (; i < n; i++)
        {
            sum = MathF.FusedMultiplyAdd(x[i], w[i], sum);
        }

        return sum;
    }

    /// <summary>Eight dot products of one token's x with eight W_enc columns, each a sequential FMA chain.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ChainsSharedX(float* x, float* wt, long* wo, int n, float* r)
    {
        float* w0 = wt + wo[0], w1 = wt + wo[1], w2 = wt + wo[2], w3 = wt + wo[3];
        float* w4 = wt + wo[4], w5 = wt + wo[5], w6 = wt + wo[6], w7 = wt + wo[7];
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
        for (int i = 0; i < n; i++)
        {
            float xi = x[i];
            s0 = MathF.FusedMultiplyAdd(xi, w0[i], s0);
            s1 = MathF.FusedMultiplyAdd(xi, w1[i], s1);
            s2 = MathF.FusedMultiplyAdd(xi, w2[i], s2);
            s3 = MathF.FusedMultiplyAdd(xi, w3[i], s3);
            s4 = MathF.FusedMultiplyAdd(xi, w4[i], s4);
            s5 = MathF.FusedMultiplyAdd(xi, w5[i], s5);
            s6 = MathF.FusedMultiplyAdd(xi, w6[i], s6);
            s7 = MathF.FusedMultiplyAdd(xi, w7[i], s7);
        }

        r[0] = s0; r[1] = s1; r[2] = s2; r[3] = s3; r[4] = s4; r[5] = s5; r[6] = s6; r[7] = s7;
    }

    /// <summary>One W_enc column against eight tokens, each a sequential FMA chain.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ChainsSharedW(float* x, long* xo, float* w, int n, float* r)
    {
        float* x0 = x + xo[0], x1 = x + xo[1], x2 = x + xo[2], x3 = x + xo[3];
        float* x4 = x + xo[4], x5 = x + xo[5], x6 = x + xo[6], x7 = x + xo[7];
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
        for (int i = 0; i < n; i++)
        {
            float wi = w[i];
            s0 = MathF.FusedMultiplyAdd(x0[i], wi, s0);
            s1 = MathF.FusedMultiplyAdd(x1[i], wi, s1);
            s2 = MathF.FusedMultiplyAdd(x2[i], wi, s2);
            s3 = MathF.FusedMultiplyAdd(x3[i], wi, s3);
            s4 = MathF.FusedMultiplyAdd(x4[i], wi, s4);
            s5 = MathF.FusedMultiplyAdd(x5[i], wi, s5);
            s6 = MathF.FusedMultiplyAdd(x6[i], wi, s6);
            s7 = MathF.FusedMultiplyAdd(x7[i], wi, s7);
        }

        r[0] = s0; r[1] = s1; r[2] = s2; r[3] = s3; r[4] = s4; r[5] = s5; r[6] = s6; r[7] = s7;
    }

    /// <summary>Eight arbitrary (token, column) pairs, eight chains (a few pointers may live on the stack).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ChainsGeneral(float* x, long* xo, float* wt, long* wo, int n, float* r)
    {
        float* x0 = x + xo[0], x1 = x + xo[1], x2 = x + xo[2], x3 = x + xo[3], x4 = x + xo[4], x5 = x + xo[5], x6 = x + xo[6], x7 = x + xo[7];
        float* w0 = wt + wo[0], w1 = wt + wo[1], w2 = wt + wo[2], w3 = wt + wo[3], w4 = wt + wo[4], w5 = wt + wo[5], w6 = wt + wo[6], w7 = wt + wo[7];
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
        for (int i = 0; i < n; i++)
        {
            s0 = MathF.FusedMultiplyAdd(x0[i], w0[i], s0);
            s1 = MathF.FusedMultiplyAdd(x1[i], w1[i], s1);
            s2 = MathF.FusedMultiplyAdd(x2[i], w2[i], s2);
            s3 = MathF.FusedMultiplyAdd(x3[i], w3[i], s3);
            s4 = MathF.FusedMultiplyAdd(x4[i], w4[i], s4);
            s5 = MathF.FusedMultiplyAdd(x5[i], w5[i], s5);
            s6 = MathF.FusedMultiplyAdd(x6[i], w6[i], s6);
            s7 = MathF.FusedMultiplyAdd(x7[i], w7[i], s7);
        }

        r[0] = s0; r[1] = s1; r[2] = s2; r[3] = s3; r[4] = s4; r[5] = s5; r[6] = s6; r[7] = s7;
    }

    /// <summary>Per-part lists: the current block's candidates, and those pending recompute (sorted by column).</summary>
    private sealed class PartState
    {
        public CandidateList Block { get; } = new();

        public CandidateList Pending { get; } = new();

        public long Candidates { get; set; }

        public long Recomputed { get; set; }

        private int[] _bucket = new int[ScreenedWeights.BlockCols + 1];

        /// <summary>Stable counting sort of <see cref="Block"/> by column into <see cref="Pending"/>: per token, features stay increasing.</summary>
        public void AppendSortedByColumn(int j0)
        {
            var b = Block;
            if (b.Count == 0)
            {
                return;
            }

            Array.Clear(_bucket);
            var js = b.FeaturesArray;
            var ts = b.TokensArray;
            for (int q = 0; q < b.Count; q++)
            {
                _bucket[js[q] - j0 + 1]++;
            }

            for (int k = 1; k <= ScreenedWeights.BlockCols; k++)
            {
                _bucket[k] += _bucket[k - 1];
            }

            int start = Pending.Count;
            Pending.Reserve(start + b.Count);
            var pt = Pending.TokensArray;
            var pj = Pending.FeaturesArray;
            for (int q = 0; q < b.Count; q++)
            {
                int at = start + _bucket[js[q] - j0]++;
                pt[at] = ts[q];
                pj[at] = js[q];
            }

            Pending.Count = start + b.Count;
        }
    }

    /// <summary>Growable (token, feature, value) arrays, reused across calls.</summary>
    private sealed class CandidateList
    {
        public int[] TokensArray = new int[64];
        public int[] FeaturesArray = new int[64];
        public float[] ValuesArray = new float[64];

        public int Count { get; set; }

        public void Clear() => Count = 0;

        public void Reserve(int n)
        {
            if (TokensArray.Length < n)
            {
                int c = Math.Max(n, TokensArray.Length * 2);
                Array.Resize(ref TokensArray, c);
                Array.Resize(ref FeaturesArray, c);
                Array.Resize(ref ValuesArray, c);
            }
        }

        public void Add(int t, int j)
        {
            if (Count == TokensArray.Length)
            {
                Reserve(Count + 1);
            }

            TokensArray[Count] = t;
            FeaturesArray[Count] = j;
            Count++;
        }
    }
}
