using System.Numerics.Tensors;

namespace GemmaScope.Kernels;

/// <summary>
/// Sparse decode of one token: x̂[i] = b_dec[i] + Σ_k values[k] · W_dec[indices[k], i]; cost L0 × d_in.
/// </summary>
internal static unsafe class SparseDecodeKernel
{
    public static void DecodeToken(in SaeWeights w, ReadOnlySpan<int> indices, ReadOnlySpan<float> values, Span<float> xhat)
    {
        new ReadOnlySpan<float>(w.BDec, w.DIn).CopyTo(xhat);
        for (int k = 0; k < indices.Length; k++)
        {
            AddRow(w, indices[k], values[k], xhat);
        }
    }

    /// <summary>dst += a · W_dec[row, :].</summary>
    public static void AddRow(in SaeWeights w, int row, float a, Span<float> dst)
    {
        int dIn = w.DIn;
        if (!w.IsBFloat16)
        {
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w.WDec + ((long)row * dIn), dIn), a, dst, dst);
            return;
        }

        ushort* src = w.WDecBf16 + ((long)row * dIn);
        for (int i = 0; i < dIn; i++)
        {
            dst[i] += a * BFloat16.ToSingle(src[i]);
        }
    }
}
