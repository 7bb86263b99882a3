using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Kernels;

/// <summary>
/// Sparse decode of one token: x̂[i] = b_dec[i] + Σ_k values[k] · W_dec[indices[k], i]; cost L0 × d_in.
/// Each active feature is one axpy over its contiguous W_dec row (bf16 rows widened in registers); x̂ (≤ 18 KB) stays
/// in L1, so the cost is reading L0 rows of W_dec.
/// </summary>
internal static unsafe class SparseDecodeKernel
{
    public static void DecodeToken(in SaeWeights w, ReadOnlySpan<int> indices, ReadOnlySpan<float> values, Span<float> xhat)
    {
        new ReadOnlySpan<float>(w.BDec, w.DIn).CopyTo(xhat);
        fixed (float* dst = xhat)
        {
            for (int k = 0; k < indices.Length; k++)
            {
                AddRow(w, indices[k], values[k], dst);
            }
        }
    }

    /// <summary>dst += a · W_dec[row, :].</summary>
    public static void AddRow(in SaeWeights w, int row, float a, Span<float> dst)
    {
        fixed (float* d = dst)
        {
            AddRow(w, row, a, d);
        }
    }

    /// <summary>dst[0..d_in) += a · W_dec[row, :].</summary>
    public static void AddRow(in SaeWeights w, int row, float a, float* dst)
    {
        switch (KernelSelector.Current)
        {
            case KernelIsa.Vector512:
                AddRow<Simd512, Vector512<float>>(w, row, a, dst);
                break;
            case KernelIsa.Vector256:
                AddRow<Simd256, Vector256<float>>(w, row, a, dst);
                break;
            case KernelIsa.Vector128:
                AddRow<Simd128, Vector128<float>>(w, row, a, dst);
                break;
            default:
                AddRow<SimdScalar, float>(w, row, a, dst);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddRow<TOps, TV>(in SaeWeights w, int row, float a, float* dst)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width, dIn = w.DIn, vec = dIn - (dIn % width), i = 0;
        TV av = TOps.Broadcast(a);
        if (w.IsBFloat16)
        {
            ushort* src = w.WDecBf16 + ((long)row * dIn);
            for (; i < vec; i += width)
            {
                TOps.Store(dst + i, TOps.Fma(av, TOps.LoadBf16(src + i), TOps.Load(dst + i)));
            }

            for (; i < dIn; i++)
            {
                dst[i] = MathF.FusedMultiplyAdd(a, BFloat16.ToSingle(src[i]), dst[i]);
            }
        }
        else
        {
            float* src = w.WDec + ((long)row * dIn);
            for (; i < vec; i += width)
            {
                TOps.Store(dst + i, TOps.Fma(av, TOps.Load(src + i), TOps.Load(dst + i)));
            }

            for (; i < dIn; i++)
            {
                dst[i] = MathF.FusedMultiplyAdd(a, src[i], dst[i]);
            }
        }
    }
}
