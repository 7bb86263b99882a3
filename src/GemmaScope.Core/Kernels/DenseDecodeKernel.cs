namespace GemmaScope.Kernels;

/// <summary>
/// Decode of dense feature rows: x̂[t, i] = b_dec[i] + Σ_j f[t, j] · W_dec[j, i].
/// JumpReLU features are sparse (L0 ≈ 10..200 of 16k..1M), so this skips zero features and does one axpy per active
/// one: cost d_sae (the scan) + L0 × d_in per token, against d_sae × d_in for a dense GEMM. Tokens are split over
/// threads (each token's x̂ row is written by one thread).
/// </summary>
internal static unsafe class DenseDecodeKernel
{
    [ThreadStatic]
    private static DecodeJob? _job;

    public static void Decode(in SaeWeights w, float* f, int tokens, float* xhat, int maxThreads)
    {
        var job = _job ??= new DecodeJob();
        job.W = w;
        job.F = f;
        job.XHat = xhat;
        job.Tokens = tokens;
        KernelWorkers.Run(job, Math.Clamp(maxThreads, 1, Math.Max(tokens, 1)));
    }

    private sealed class DecodeJob : KernelJob
    {
        public SaeWeights W { get; set; }

        public float* F { get; set; }

        public float* XHat { get; set; }

        public int Tokens { get; set; }

        public override void Execute(int part, int parts)
        {
            var w = W;
            int dIn = w.DIn, dSae = w.DSae;
            var (t0, t1) = Share(Tokens, part, parts);
            for (int t = t0; t < t1; t++)
            {
                float* dst = XHat + ((long)t * dIn);
                new ReadOnlySpan<float>(w.BDec, dIn).CopyTo(new Span<float>(dst, dIn));
                float* ft = F + ((long)t * dSae);
                for (int j = 0; j < dSae; j++)
                {
                    if (ft[j] != 0f)
                    {
                        SparseDecodeKernel.AddRow(w, j, ft[j], dst);
                    }
                }
            }
        }
    }
}
