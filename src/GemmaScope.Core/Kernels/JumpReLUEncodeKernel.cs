using System.Runtime.Intrinsics;

namespace GemmaScope.Kernels;

/// <summary>
/// Encode: for each token t and latent j,
///   pre[t, j] = b_enc[j] + Σ_i x[t, i] · W_enc[i, j]
///   f[t, j]   = pre[t, j] if pre[t, j] &gt; threshold[j] and pre[t, j] &gt; 0, else 0.
/// Chooses the streaming GEMV (few tokens, memory-bound) or the packed GEMM,
/// the SIMD width (<see cref="KernelSelector"/>), and splits the latent columns over up to maxThreads parts.
/// Output is dense f, or (sparse) the active features collected in each tile's epilogue without a dense row.
/// Every path (GEMV, per-call GEMM, packed GEMM, screened recompute) computes pre[t, j] in one order: one fp32 FMA
/// chain from 0 over i = 0 … d_in − 1, then + b_enc[j]. So a token's bits never depend on the path taken, the batch
/// around it, the thread count, or whether the packed copy exists yet (EncodeDeterminismTests checks all of these).
/// Thread-safe: concurrent calls share nothing mutable except the worker pool, which serialises itself.
/// </summary>
internal static unsafe class JumpReLUEncodeKernel
{
    [ThreadStatic]
    private static EncodeJob? _job;

    /// <summary>Dense encode of tokens × d_in into tokens × d_sae.</summary>
    public static void Encode(in SaeWeights w, float* x, int tokens, float* f, int maxThreads)
    {
        if (tokens > 0)
        {
            Run(w, x, tokens, f, sparse: false, maxThreads);
        }
    }

    /// <summary>Sparse encode: active features of each token, by increasing index.</summary>
    public static SparseFeatureBatch EncodeSparse(in SaeWeights w, float* x, int tokens, int maxThreads)
    {
        var offsets = new int[tokens + 1];
        if (tokens == 0)
        {
            return SparseFeatureBatch.FromTrusted(w.DSae, offsets, [], []);
        }

        var job = Run(w, x, tokens, null, sparse: true, maxThreads);
        int total = Count(job, tokens, offsets);
        var indices = GC.AllocateUninitializedArray<int>(total);
        var values = GC.AllocateUninitializedArray<float>(total);
        Gather(job, tokens, offsets, indices, values);
        return SparseFeatureBatch.FromTrusted(w.DSae, offsets, indices, values);
    }

    /// <summary>Sparse encode into a caller-owned buffer, which grows as needed and is otherwise reused (no allocation once large enough).</summary>
    public static void EncodeSparse(in SaeWeights w, float* x, int tokens, int maxThreads, SparseFeatureBuffer destination)
    {
        var offsets = destination.PrepareOffsets(w.DSae, tokens);
        if (tokens == 0)
        {
            destination.Commit(0);
            return;
        }

        var job = Run(w, x, tokens, null, sparse: true, maxThreads);
        int total = Count(job, tokens, offsets);
        var (indices, values) = destination.PrepareEntries(total);
        Gather(job, tokens, offsets, indices, values);
        destination.Commit(total);
    }

    /// <summary>Fills offsets[0..tokens] from the parts' per-token counts; returns the total.</summary>
    private static int Count(EncodeJob job, int tokens, Span<int> offsets)
    {
        offsets[..(tokens + 1)].Clear();
        var counts = offsets.Slice(1, tokens);
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

        return offsets[tokens];
    }

    private static void Gather(EncodeJob job, int tokens, ReadOnlySpan<int> offsets, Span<int> indices, Span<float> values)
    {
        var cursor = job.Cursor(tokens);
        offsets[..tokens].CopyTo(cursor);

        // Parts cover increasing column ranges and each lists a token's features in increasing order, so appending
        // part by part keeps every token's indices sorted.
        for (int p = 0; p < job.Parts; p++)
        {
            var s = job.Sinks[p];
            var ts = s.Tokens;
            var fs = s.Features;
            var vs = s.Values;
            for (int q = 0; q < ts.Length; q++)
            {
                int at = cursor[ts[q]]++;
                indices[at] = fs[q];
                values[at] = vs[q];
            }
        }
    }

    /// <summary>
    /// Sparse encode of one token into caller spans without allocating (after warm-up); returns L0, or −L0 when the
    /// spans are too short (nothing written past them).
    /// </summary>
    public static int EncodeSparseToken(in SaeWeights w, float* x, Span<int> indices, Span<float> values, int maxThreads)
    {
        var job = Run(w, x, 1, null, sparse: true, maxThreads);
        int n = 0, cap = Math.Min(indices.Length, values.Length);
        for (int p = 0; p < job.Parts; p++)
        {
            var s = job.Sinks[p];
            var fs = s.Features;
            var vs = s.Values;
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

    /// <summary>
    /// Fewest tokens for which the packed copy (when the SAE keeps one) is used; below it the streaming GEMV reads
    /// W_enc in place. Settable for tuning and tests.
    /// </summary>
    internal static int PackedFromTokens { get; set; } = 1;

    /// <summary>The path and width the next encode of <paramref name="tokens"/> tokens takes, for benchmark reports.</summary>
    internal static string Describe(in SaeWeights w, int tokens)
    {
        var isa = KernelSelector.Current;
        string path = w.Packed is { Bytes: > 0 } && tokens >= PackedFromTokens ? "packed GEMM"
            : tokens <= (w.IsBFloat16 ? JumpReLUGemvKernel.MaxTokensBf16 : JumpReLUGemvKernel.MaxTokens) ? "GEMV" : "GEMM (per-call pack)";
        return $"{path}, {isa}";
    }

    private static EncodeJob Run(in SaeWeights w, float* x, int tokens, float* f, bool sparse, int maxThreads)
    {
        var job = _job ??= new EncodeJob();
        job.W = w;
        job.X = x;
        job.F = f;
        job.Tokens = tokens;
        job.Isa = KernelSelector.Current;
        int width = job.Isa switch { KernelIsa.Vector512 => 16, KernelIsa.Vector256 => 8, KernelIsa.Vector128 => 4, _ => 1 };
        // One token can also take the in-place GEMV, so it does not wait for the copy to be built.
        job.Packed = w.Packed is not { } cache || tokens < PackedFromTokens ? null
            : tokens == 1 ? cache.TryGet(w, width, maxThreads) : cache.Get(w, width, maxThreads);
        job.Gemv = job.Packed is null && tokens <= (w.IsBFloat16 ? JumpReLUGemvKernel.MaxTokensBf16 : JumpReLUGemvKernel.MaxTokens);
        int units = job.Packed is { } pk ? pk.Panels
            : job.Gemv ? (w.DSae + 15) / 16
            : (w.DSae + (JumpReLUGemmKernel.NV * width) - 1) / (JumpReLUGemmKernel.NV * width);
        job.Units = units;
        job.Parts = Math.Clamp(maxThreads, 1, units);
        job.PrepareSinks(sparse);
        KernelWorkers.Run(job, job.Parts);
        job.Packed = null;
        return job;
    }

    /// <summary>One encode call's arguments, reused per calling thread.</summary>
    private sealed class EncodeJob : KernelJob
    {
        private SparseCollector[] _sinks = [];
        private int[] _cursor = [];
        private bool _sparse;

        public SaeWeights W { get; set; }

        public float* X { get; set; }

        public float* F { get; set; }

        public int Tokens { get; set; }

        public KernelIsa Isa { get; set; }

        public bool Gemv { get; set; }

        public PackedEncoder? Packed { get; set; }

        /// <summary>GEMV: 16-column groups; GEMM: column slivers.</summary>
        public int Units { get; set; }

        public int Parts { get; set; }

        public SparseCollector[] Sinks => _sinks;

        public Span<int> Cursor(int tokens)
        {
            if (_cursor.Length < tokens)
            {
                _cursor = new int[tokens];
            }

            return _cursor.AsSpan(0, tokens);
        }

        public void PrepareSinks(bool sparse)
        {
            _sparse = sparse;
            if (!sparse)
            {
                return;
            }

            if (_sinks.Length < Parts)
            {
                int old = _sinks.Length;
                Array.Resize(ref _sinks, Parts);
                for (int i = old; i < Parts; i++)
                {
                    _sinks[i] = new SparseCollector();
                }
            }

            for (int i = 0; i < Parts; i++)
            {
                _sinks[i].Clear();
            }
        }

        public override void Execute(int part, int parts)
        {
            var (u0, u1) = Share(Units, part, parts);
            var sink = _sparse ? _sinks[part] : null;
            var w = W;
            switch (Isa)
            {
                case KernelIsa.Vector512:
                    Dispatch<Simd512, Vector512<float>>(w, u0, u1, sink);
                    break;
                case KernelIsa.Vector256:
                    Dispatch<Simd256, Vector256<float>>(w, u0, u1, sink);
                    break;
                case KernelIsa.Vector128:
                    Dispatch<Simd128, Vector128<float>>(w, u0, u1, sink);
                    break;
                default:
                    Dispatch<SimdScalar, float>(w, u0, u1, sink);
                    break;
            }
        }

        private void Dispatch<TOps, TV>(in SaeWeights w, int u0, int u1, SparseCollector? sink)
            where TOps : struct, ISimdOps<TV>
            where TV : struct
        {
            if (Packed is { } pk)
            {
                JumpReLUPackedGemmKernel.Run<TOps, TV>(w, pk, X, Tokens, F, sink, u0, u1);
            }
            else if (Gemv)
            {
                JumpReLUGemvKernel.Run<TOps, TV>(w, X, Tokens, F, sink, u0 * 16, Math.Min(u1 * 16, w.DSae));
            }
            else
            {
                JumpReLUGemmKernel.Run<TOps, TV>(w, X, Tokens, F, sink, u0, u1);
            }
        }
    }
}
