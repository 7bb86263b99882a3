using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// Exact screened encode (<see cref="SaeLoadOptions.Screening"/>) against (1) an independent scalar reference with the
/// dense kernel's summation (one fp32 FMA chain from 0 over i, then + b, then JumpReLU), bitwise, and (2) the dense
/// fp32 kernel itself, within the contract (a disagreement only where |pre − θ| ≤ 1e-5·Σ|x_i w_ij|, pre in float64).
/// Inputs are adversarial: thresholds a hair either side of pre, x aligned with a column's quantisation error (so the
/// int8 screen errs by nearly its whole bound, in the dangerous direction), outlier dimensions, x = 0, huge and tiny
/// norms; every SIMD width forced, 1 and 2 threads, sizes that are not multiples of 4, 8 or 32.
/// </summary>
[Collection(KernelIsaCollection.Name)]
public sealed class ScreenedEncodeTests
{
    public static TheoryData<string, int> IsaThreads()
    {
        var d = new TheoryData<string, int>();
        foreach (var isa in new[] { "Auto", "Vector512", "Vector256", "Vector128", "Scalar" })
        {
            d.Add(isa, 1);
            d.Add(isa, 2);
        }

        return d;
    }

    [Theory]
    [MemberData(nameof(IsaThreads))]
    public void AdversarialInputsMatchDenseKernel(string isa, int threads)
    {
        using var _ = new ForcedIsa(Enum.Parse<KernelIsa>(isa));
        foreach (var (n, m) in new[] { (203, 150), (64, 32), (517, 333) })
        {
            var c = new Case(n, m, seed: n + m, threads);
            foreach (var (name, x, tokens) in c.Inputs())
            {
                var bad = c.Check(x, tokens);
                Assert.True(bad.Count == 0, $"{isa}/{threads}t n={n} m={m} {name}: {bad.Count} violations, first: {(bad.Count > 0 ? bad[0] : "")}");
            }
        }
    }

    [Theory]
    [InlineData("Vector256")]
    [InlineData("Scalar")]
    public void HalvedBoundIsCaught(string isa)
    {
        // The aligned inputs make the screen's real error ≈ ‖x‖·‖w_j − ŵ_j‖, the bound's main term: with half the
        // bound, features a hair above their threshold are screened out, and the checks above must see it.
        using var _ = new ForcedIsa(Enum.Parse<KernelIsa>(isa));
        var c = new Case(203, 150, seed: 7, threads: 1);
        var (x, tokens) = c.Aligned();
        Assert.Empty(c.Check(x, tokens));
        try
        {
            ScreenedEncodeKernel.BoundScale = 0.5f;
            Assert.NotEmpty(c.Check(x, tokens));
        }
        finally
        {
            ScreenedEncodeKernel.BoundScale = 1f;
        }
    }

    [Fact]
    public void FilterWithoutItsBoundIsCaught()
    {
        // The fp32 filter's bound is tiny (≈ 1e-4 relative) but needed: without it, features one ulp above their
        // threshold are dropped whenever the SIMD dot rounds below the sequential chain.
        var c = new Case(517, 333, seed: 11, threads: 1);
        var x = new float[8 * 517];
        var rng = new Random(5);
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)((rng.NextDouble() * 2) - 1);
        }

        Assert.Empty(c.Check(x, 8));
        try
        {
            ScreenedEncodeKernel.FilterBoundScale = 0f;
            Assert.NotEmpty(c.Check(x, 8));
        }
        finally
        {
            ScreenedEncodeKernel.FilterBoundScale = 1f;
        }
    }

    [Fact]
    public void ScreeningReportsItsMemoryAndRejectsBFloat16()
    {
        var c = new Case(203, 150, seed: 3, threads: 1);
        Assert.True(c.Screened.Screening);
        Assert.False(c.Dense.Screening);
        Assert.True(c.Screened.ScreeningBytes >= 5L * 203 * 150);
        var ex = Assert.Throws<NotSupportedException>(() => JumpReLUSae.FromArrays(c.W, new float[c.W.Length], c.B, new float[203], c.Theta, 203,
            new SaeLoadOptions { Screening = true, Precision = SaePrecision.BFloat16 }));
        Assert.Contains("float32", ex.Message);
    }

    /// <summary>One random SAE, with a dense and a screened copy, and the inputs and checks.</summary>
    private sealed class Case
    {
        private readonly int _n;
        private readonly int _m;
        private readonly Random _rng;

        public Case(int n, int m, int seed, int threads)
        {
            _n = n;
            _m = m;
            _rng = new Random(seed);
            float s = 1f / MathF.Sqrt(n);
            W = new float[n * m];
            for (int i = 0; i < W.Length; i++)
            {
                W[i] = (float)(Gauss() * s);
            }

            B = new float[m];
            Theta = new float[m];
            for (int j = 0; j < m; j++)
            {
                B[j] = (float)((_rng.NextDouble() - 0.5) * 0.2);
                Theta[j] = (float)(0.5 + (_rng.NextDouble() * 0.5));
            }

            // Hair thresholds are set per input (below), so each Check builds its own pair of SAEs from Theta.
            Threads = threads;
            Dense = Make(false);
            Screened = Make(true);
        }

        public float[] W { get; }

        public float[] B { get; }

        public float[] Theta { get; private set; }

        public int Threads { get; }

        public JumpReLUSae Dense { get; private set; }

        public JumpReLUSae Screened { get; private set; }

        private JumpReLUSae Make(bool screening) => JumpReLUSae.FromArrays(W, new float[W.Length], B, new float[_n], Theta, _n,
            new SaeLoadOptions { Screening = screening, MaxDegreeOfParallelism = Threads });

        private double Gauss() => Math.Sqrt(-2 * Math.Log(1 - _rng.NextDouble())) * Math.Cos(2 * Math.PI * _rng.NextDouble());

        public IEnumerable<(string Name, float[] X, int Tokens)> Inputs()
        {
            float[] G(int tokens, double scale)
            {
                var x = new float[tokens * _n];
                for (int i = 0; i < x.Length; i++)
                {
                    x[i] = (float)(Gauss() * scale);
                }

                return x;
            }

            yield return ("gaussian", G(5, 1), 5);
            yield return ("one token", G(1, 1), 1);
            var o = G(7, 1);
            for (int t = 0; t < 7; t++)
            {
                // A few massive dimensions, 50–100 × the rest, at the same places in every token (as in LLM residuals).
                o[(t * _n) + 3] = 100f;
                o[(t * _n) + (_n / 2)] = -60f * (t + 1) / 7;
                o[(t * _n) + _n - 1] = 50f;
            }

            yield return ("outlier dims", o, 7);
            yield return ("zero", new float[3 * _n], 3);
            yield return ("huge norm", G(2, 1e12), 2);
            yield return ("tiny norm", G(2, 1e-30), 2);
            yield return ("overflow guard", G(2, 1e34), 2);
            var (a, at) = Aligned();
            yield return ("aligned with quantisation error", a, at);
            yield return ("many tokens", G(37, 1), 37);
        }

        /// <summary>
        /// One token per feature j (up to 16): x = round(127·e_j / max|e_j|), e_j = w_j − ŵ_j with the documented
        /// quantisation (s_j = max|w_ij|/127, q = round(w/s_j)); x is on the int8 grid, so only the weight error remains.
        /// </summary>
        public (float[] X, int Tokens) Aligned()
        {
            int tokens = Math.Min(16, _m);
            var x = new float[tokens * _n];
            for (int t = 0; t < tokens; t++)
            {
                int j = t * _m / tokens;
                float s = 0f;
                for (int i = 0; i < _n; i++)
                {
                    s = MathF.Max(s, MathF.Abs(W[(i * _m) + j]));
                }

                s /= 127f;
                var e = new double[_n];
                double emax = 0;
                for (int i = 0; i < _n; i++)
                {
                    float w = W[(i * _m) + j];
                    e[i] = w - ((double)s * Math.Clamp(MathF.Round(w / s), -127f, 127f));
                    emax = Math.Max(emax, Math.Abs(e[i]));
                }

                for (int i = 0; i < _n; i++)
                {
                    x[(t * _n) + i] = emax == 0 ? 0f : MathF.Round((float)(127 * e[i] / emax));
                }
            }

            return (x, tokens);
        }

        private float Chain(float[] x, int t, int j)
        {
            float s = 0f;
            for (int i = 0; i < _n; i++)
            {
                s = MathF.FusedMultiplyAdd(x[(t * _n) + i], W[(i * _m) + j], s);
            }

            return s + B[j];
        }

        /// <summary>Sets thresholds a hair around this input's pre-activations, rebuilds the SAEs, and lists every violation.</summary>
        public List<string> Check(float[] x, int tokens)
        {
            // Thresholds: most features keep their random θ; every third gets θ just below its fp32 pre on the
            // first token (fires by one ulp), every third + 1 exactly at it (does not fire: needs pre > θ).
            var theta = (float[])Theta.Clone();
            for (int j = 0; j < _m; j++)
            {
                int t = j % tokens;
                float pre = Chain(x, t, j);
                if (j % 3 == 0 && pre > 0)
                {
                    theta[j] = MathF.BitDecrement(pre);
                }
                else if (j % 3 == 1)
                {
                    theta[j] = pre;
                }
            }

            var keep = Theta;
            Theta = theta;
            using var dense = Make(false);
            using var screened = Make(true);
            Theta = keep;
            var bad = new List<string>();
            var fd = Poisoned(tokens * _m);
            var fs = Poisoned(tokens * _m);
            dense.Encode(x, fd);
            screened.Encode(x, fs);
            var sparse = screened.EncodeSparse(x);
            for (int t = 0; t < tokens; t++)
            {
                var ft = sparse[t];
                int k = 0;
                for (int j = 0; j < _m; j++)
                {
                    float pre = Chain(x, t, j);
                    float expect = pre > theta[j] && pre > 0f ? pre : 0f;
                    float got = fs[(t * _m) + j];
                    if (BitConverter.SingleToInt32Bits(got) != BitConverter.SingleToInt32Bits(expect))
                    {
                        bad.Add($"t={t} j={j}: screened {got:R}, fp32 chain {expect:R}, θ {theta[j]:R}");
                    }

                    float dv = fd[(t * _m) + j];
                    if (dv != got)
                    {
                        double p64 = B[j], abs = 0;
                        for (int i = 0; i < _n; i++)
                        {
                            double v = (double)x[(t * _n) + i] * W[(i * _m) + j];
                            p64 += v;
                            abs += Math.Abs(v);
                        }

                        if (Math.Abs(p64 - theta[j]) > 1e-5 * abs)
                        {
                            bad.Add($"t={t} j={j}: screened {got:R} vs dense {dv:R} outside the contract");
                        }
                    }

                    if (got != 0f)
                    {
                        if (k >= ft.Indices.Length || ft.Indices[k] != j || ft.Values[k] != got)
                        {
                            bad.Add($"t={t} j={j}: EncodeSparse disagrees with Encode");
                        }

                        k++;
                    }
                }

                if (k != ft.Indices.Length)
                {
                    bad.Add($"t={t}: EncodeSparse has {ft.Indices.Length} features, Encode {k}");
                }
            }

            // The allocation-free single-token overload goes through the same path.
            var idx = new int[_m];
            var val = new float[_m];
            int l0 = screened.EncodeSparse(x.AsSpan(0, _n), idx, val);
            var f0 = sparse[0];
            if (l0 != f0.Indices.Length || !idx.AsSpan(0, l0).SequenceEqual(f0.Indices) || !val.AsSpan(0, l0).SequenceEqual(f0.Values))
            {
                bad.Add("single-token EncodeSparse disagrees with the batch");
            }

            return bad;
        }

        private static float[] Poisoned(int n)
        {
            var a = new float[n];
            a.AsSpan().Fill(float.NaN);
            return a;
        }
    }
}
