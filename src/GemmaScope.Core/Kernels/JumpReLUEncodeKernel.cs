using System.Numerics.Tensors;

namespace GemmaScope.Kernels;

/// <summary>
/// Encode: for each token t and latent j,
///   pre[t, j] = b_enc[j] + Σ_i x[t, i] · W_enc[i, j]
///   f[t, j]   = pre[t, j] if pre[t, j] &gt; threshold[j] and pre[t, j] &gt; 0, else 0.
/// Reference version: one axpy per input element over the contiguous W_enc row (vectorised by TensorPrimitives).
/// </summary>
internal static unsafe class JumpReLUEncodeKernel
{
    public static void Encode(in SaeWeights w, float* x, int tokens, float* f, int maxThreads)
    {
        int dIn = w.DIn, dSae = w.DSae;
        var bEnc = new ReadOnlySpan<float>(w.BEnc, dSae);
        var thr = new ReadOnlySpan<float>(w.Threshold, dSae);
        float[]? widened = w.IsBFloat16 ? new float[dSae] : null;
        for (int t = 0; t < tokens; t++)
        {
            var pre = new Span<float>(f + ((long)t * dSae), dSae);
            bEnc.CopyTo(pre);
            float* xt = x + ((long)t * dIn);
            for (int i = 0; i < dIn; i++)
            {
                float xi = xt[i];
                if (xi == 0f)
                {
                    continue;
                }

                ReadOnlySpan<float> row;
                if (widened is null)
                {
                    row = new ReadOnlySpan<float>(w.WEnc + ((long)i * dSae), dSae);
                }
                else
                {
                    ushort* src = w.WEncBf16 + ((long)i * dSae);
                    for (int j = 0; j < dSae; j++)
                    {
                        widened[j] = BFloat16.ToSingle(src[j]);
                    }

                    row = widened;
                }

                TensorPrimitives.MultiplyAdd(row, xi, pre, pre);
            }

            for (int j = 0; j < dSae; j++)
            {
                float v = pre[j];
                pre[j] = v > thr[j] && v > 0f ? v : 0f;
            }
        }
    }
}
