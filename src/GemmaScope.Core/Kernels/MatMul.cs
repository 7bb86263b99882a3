using System.Globalization;
using System.Runtime.Intrinsics;
using GemmaScope.Formats;

namespace GemmaScope.Kernels;

/// <summary>
/// Matrix products against weights stored as a checkpoint stores them (<see cref="WeightMatrix"/>, [out, in]), read in
/// place in their own dtype. Deterministic by construction: every output element is one dot product with a fixed
/// summation order (16 fp32 lanes over <c>in</c> in steps of 16, a fixed lane-sum tree, then the remaining elements in
/// order), so its bits do not depend on the token count, the thread count, where the row sits in the batch, or the SIMD
/// width the machine has. Work is split over outputs only.
/// </summary>
public static unsafe class MatMul
{
    /// <summary>Below this many multiply-adds per thread, waking another thread costs more than it saves.</summary>
    internal const long MinMacsPerPart = 1L << 18;

    [ThreadStatic]
    private static MultiplyJob? _job;

    /// <summary>Tuning switch (benchmarks): the k block for multi-tile calls, 0 = default. Never changes results.</summary>
    internal static int KcOverride { get; set; }

    /// <summary>Tuning switch (benchmarks): the output block, 0 = from L2. Never changes results.</summary>
    internal static int NbOverride { get; set; }

    /// <summary>
    /// y[t, o] = Σ_i x[t, i] · W[o, i] for t &lt; <paramref name="tokens"/>, o &lt; <c>w.Rows</c>.
    /// </summary>
    /// <param name="x">Activations, [tokens, w.Cols] row-major.</param>
    /// <param name="tokens">Token rows in <paramref name="x"/>, at least 1.</param>
    /// <param name="w">The weights, [out, in].</param>
    /// <param name="y">Results, [tokens, w.Rows] row-major; every element is written. Must not overlap <paramref name="x"/>.</param>
    /// <param name="threads">Threads to use; 0 = one per core. The result is the same bits for any value.</param>
    /// <exception cref="ArgumentException">A length does not match the shapes, or x and y overlap.</exception>
    public static void Multiply(ReadOnlySpan<float> x, int tokens, in WeightMatrix w, Span<float> y, int threads = 0) =>
        Multiply(x, tokens, w, y, threads, KernelSelector.Current);

    /// <summary><see cref="Multiply(ReadOnlySpan{float}, int, in WeightMatrix, Span{float}, int)"/> on a chosen SIMD width (tests).</summary>
    internal static void Multiply(ReadOnlySpan<float> x, int tokens, in WeightMatrix w, Span<float> y, int threads, KernelIsa isa)
    {
        if (w.Address == 0)
        {
            throw new ArgumentException("MatMul: the weight matrix is default (not made by WeightMatrix.Create).", nameof(w));
        }

        if (tokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "MatMul: tokens must be at least 1.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        long xLen = (long)tokens * w.Cols, yLen = (long)tokens * w.Rows;
        if (x.Length != xLen)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"MatMul: x has {x.Length} floats; expected tokens × in = {tokens} × {w.Cols} = {xLen}."), nameof(x));
        }

        if (y.Length != yLen)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"MatMul: y has {y.Length} floats; expected tokens × out = {tokens} × {w.Rows} = {yLen}."), nameof(y));
        }

        if (x.Overlaps(y))
        {
            throw new ArgumentException("MatMul: y overlaps x; the product cannot be computed in place.", nameof(y));
        }

        fixed (float* px = x)
        fixed (float* py = y)
        {
            Run(px, tokens, w, py, threads, isa);
        }
    }

    /// <summary>The product on raw pointers (shapes already checked).</summary>
    internal static void Run(float* x, int tokens, in WeightMatrix w, float* y, int threads, KernelIsa isa)
    {
        isa = Resolve(isa);
        int width = isa switch { KernelIsa.Vector512 => 16, KernelIsa.Vector256 => 8, KernelIsa.Vector128 => 4, _ => 1 };
        int tiles = (w.Rows + DotGemmKernel.PartGrain - 1) / DotGemmKernel.PartGrain;
        long macs = (long)tokens * w.Rows * w.Cols;
        int parts = threads == 0 ? Environment.ProcessorCount : threads;
        parts = (int)Math.Max(1, Math.Min(Math.Min(parts, tiles), macs / MinMacsPerPart));
        var job = _job ??= new MultiplyJob();
        job.X = x;
        job.Y = y;
        job.Tokens = tokens;
        job.W = w;
        job.Isa = isa;
        job.Tiles = tiles;
        (job.Kc, job.Nb) = Blocking(tokens, w, width);
        try
        {
            KernelWorkers.Run(job, parts);
        }
        finally
        {
            job.X = null;
            job.Y = null;
        }
    }

    /// <summary>
    /// k block and output block. A single token tile reads each weight row once, so it streams whole rows (the k
    /// block only matters when the x tile is reused across outputs); the narrower paths sweep a k block once per lane
    /// group, so theirs stays small enough to be read again from L1. NB keeps NB weight rows in half of L2, within [32, 64].
    /// </summary>
    private static (int Kc, int Nb) Blocking(int tokens, in WeightMatrix w, int width)
    {
        int in16 = w.Cols & ~15;
        int kc = tokens <= DotGemmKernel.TokenTile(width) && width == 16 ? in16 : KcOverride > 0 ? KcOverride : 512;
        kc = Math.Max(16, Math.Min(kc, Math.Max(in16, 16)));
        long rowBytes = (long)w.Cols * (w.DType == TensorDType.Float32 ? 4 : 2);
        long nb = CacheSizes.L2 / 2 / rowBytes;
        // At least 32 rows: every output block re-reads the whole x tile set, so a small block (long rows) makes the
        // x traffic dominate at large token counts (measured at in = 9216: 8 rows ran 0.46–0.64× ORT, 32 rows better).
        nb = NbOverride > 0 ? NbOverride : Math.Clamp(nb, 32, 64);
        return (kc, (int)Math.Max(DotGemmKernel.PartGrain, nb / DotGemmKernel.PartGrain * DotGemmKernel.PartGrain));
    }

    private static KernelIsa Resolve(KernelIsa isa)
    {
        if (isa == KernelIsa.Vector512 && !Vector512.IsHardwareAccelerated)
        {
            isa = KernelIsa.Vector256;
        }

        if (isa == KernelIsa.Vector256 && !Vector256.IsHardwareAccelerated)
        {
            isa = KernelIsa.Vector128;
        }

        if (isa == KernelIsa.Vector128 && !Vector128.IsHardwareAccelerated)
        {
            isa = KernelIsa.Scalar;
        }

        return isa == KernelIsa.Auto ? KernelSelector.Current : isa;
    }

    /// <summary>One call's parameters; each calling thread reuses its own, so a call allocates nothing.</summary>
    private sealed class MultiplyJob : KernelJob
    {
        public float* X;
        public float* Y;
        public int Tokens;
        public WeightMatrix W;
        public KernelIsa Isa;
        public int Tiles;
        public int Kc;
        public int Nb;

        public override void Execute(int part, int parts)
        {
            var (g0, g1) = Share(Tiles, part, parts);
            int o0 = g0 * DotGemmKernel.PartGrain;
            int o1 = Math.Min(W.Rows, g1 * DotGemmKernel.PartGrain);
            if (o0 >= o1)
            {
                return;
            }

            switch (W.DType)
            {
                case TensorDType.Float32:
                    Run<F32Element>(o0, o1);
                    break;
                case TensorDType.BFloat16:
                    Run<BF16Element>(o0, o1);
                    break;
                default:
                    Run<F16Element>(o0, o1);
                    break;
            }
        }

        private void Run<TW>(int o0, int o1)
            where TW : struct, IWeightElement
        {
            switch (Isa)
            {
                case KernelIsa.Vector512:
                    DotGemmKernel.Run<Simd512, Vector512<float>, TW>(X, Tokens, W, Y, o0, o1, Kc, Nb);
                    break;
                case KernelIsa.Vector256:
                    DotGemmKernel.Run<Simd256, Vector256<float>, TW>(X, Tokens, W, Y, o0, o1, Kc, Nb);
                    break;
                case KernelIsa.Vector128:
                    DotGemmKernel.Run<Simd128, Vector128<float>, TW>(X, Tokens, W, Y, o0, o1, Kc, Nb);
                    break;
                default:
                    DotGemmKernel.Run<SimdScalar, float, TW>(X, Tokens, W, Y, o0, o1, Kc, Nb);
                    break;
            }
        }
    }
}
