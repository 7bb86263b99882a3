using System.Numerics.Tensors;

namespace GemmaScope.Kernels;

/// <summary>
/// Decode: x̂[t, i] = b_dec[i] + Σ_j f[t, j] · W_dec[j, i].
/// Reference version: one axpy per non-zero feature over the contiguous W_dec row (zeros skipped, since f is sparse).
/// </summary>
internal static unsafe class DenseDecodeKernel
{
    public static void Decode(in SaeWeights w, float* f, int tokens, float* xhat, int maxThreads)
    {
        int dIn = w.DIn, dSae = w.DSae;
        for (int t = 0; t < tokens; t++)
        {
            var dst = new Span<float>(xhat + ((long)t * dIn), dIn);
            new ReadOnlySpan<float>(w.BDec, dIn).CopyTo(dst);
            float* ft = f + ((long)t * dSae);
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
