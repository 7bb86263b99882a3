using System.Runtime.CompilerServices;

namespace GemmaScope.Kernels;

/// <summary>
/// Encode for a handful of tokens, where the GEMM is memory-bound on W_enc (each weight is used `tokens` times):
///   f[t, j] = JumpReLU(b_enc[j] + Σ_i x[t, i] · W_enc[i, j], threshold[j]).
/// Streams W_enc exactly once, four rows at a time over a chunk of up to <see cref="Chunk"/> contiguous columns, into
/// per-token accumulators that stay in L1. bf16 weights are widened in registers, so they move half the bytes.
/// No packing: packing would read the same bytes and add a write.
/// </summary>
internal static unsafe class JumpReLUGemvKernel
{
    /// <summary>Columns per accumulator chunk (4 KB of fp32 per token: stays in L1, rows stream as whole pages).</summary>
    public const int Chunk = 1024;

    /// <summary>Most tokens this path is used for.</summary>
    public const int MaxTokens = 4;

    /// <summary>Runs columns [c0, c1) for all tokens; c0 is a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV>(in SaeWeights w, float* x, int tokens, float* f, SparseCollector? sink, int c0, int c1)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width, dIn = w.DIn;
        long dSae = w.DSae;
        float* acc = KernelScratch.Get((long)tokens * Chunk);
        for (int jc = c0; jc < c1; jc += Chunk)
        {
            int cw = Math.Min(Chunk, c1 - jc), vec = cw - (cw % width);
            new Span<float>(acc, tokens * Chunk).Clear();
            for (int i = 0; i < dIn; i += 4)
            {
                // Rows outer, tokens inner: the 4 rows of this chunk (≤ 16 KB) are read from memory once and from L1 after.
                int n = Math.Min(4, dIn - i);
                for (int t = 0; t < tokens; t++)
                {
                    float* xt = x + ((long)t * dIn) + i, at = acc + (t * Chunk);
                    if (w.IsBFloat16)
                    {
                        ushort* r = w.WEncBf16 + (i * dSae) + jc;
                        if (n == 4)
                        {
                            Rows4Bf16<TOps, TV>(at, xt, r, dSae, vec, cw);
                        }
                        else
                        {
                            for (int q = 0; q < n; q++)
                            {
                                Row1Bf16<TOps, TV>(at, xt[q], r + (q * dSae), vec, cw);
                            }
                        }
                    }
                    else
                    {
                        float* r = w.WEnc + (i * dSae) + jc;
                        if (n == 4)
                        {
                            Rows4<TOps, TV>(at, xt, r, dSae, vec, cw);
                        }
                        else
                        {
                            for (int q = 0; q < n; q++)
                            {
                                Row1<TOps, TV>(at, xt[q], r + (q * dSae), vec, cw);
                            }
                        }
                    }
                }
            }

            for (int t = 0; t < tokens; t++)
            {
                Epilogue<TOps, TV>(w, acc + (t * Chunk), f + (t * dSae) + jc, jc, cw, vec, sink, t);
            }
        }
    }

    /// <summary>Bias + JumpReLU over a chunk, in place in the accumulator, then dense copy or sparse collection.</summary>
    private static void Epilogue<TOps, TV>(in SaeWeights w, float* at, float* dst, int jc, int cw, int vec, SparseCollector? sink, int token)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width;
        float* bias = w.BEnc + jc, thr = w.Threshold + jc;
        int j = 0;
        for (; j < vec; j += width)
        {
            TOps.Store(at + j, TOps.JumpReLU(TOps.Add(TOps.Load(at + j), TOps.Load(bias + j)), TOps.Load(thr + j)));
        }

        for (; j < cw; j++)
        {
            at[j] = SimdScalar.JumpReLU(at[j] + bias[j], thr[j]);
        }

        if (sink is null)
        {
            new ReadOnlySpan<float>(at, cw).CopyTo(new Span<float>(dst, cw));
            return;
        }

        j = 0;
        for (; j < vec; j += width)
        {
            uint m = TOps.NonZeroMask(TOps.Load(at + j));
            while (m != 0)
            {
                int c = System.Numerics.BitOperations.TrailingZeroCount(m);
                sink.Add(token, jc + j + c, at[j + c]);
                m &= m - 1;
            }
        }

        for (; j < cw; j++)
        {
            if (at[j] != 0f)
            {
                sink.Add(token, jc + j, at[j]);
            }
        }
    }

    /// <summary>at[j] += Σ_q x[q] · r[q·ld + j] over four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4<TOps, TV>(float* at, float* x, float* r0, long ld, int vec, int cw)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width;
        float* r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld;
        TV x0 = TOps.Broadcast(x[0]), x1 = TOps.Broadcast(x[1]), x2 = TOps.Broadcast(x[2]), x3 = TOps.Broadcast(x[3]);
        int j = 0;
        for (; j < vec; j += width)
        {
            TV s = TOps.Fma(x0, TOps.Load(r0 + j), TOps.Load(at + j));
            s = TOps.Fma(x1, TOps.Load(r1 + j), s);
            s = TOps.Fma(x2, TOps.Load(r2 + j), s);
            TOps.Store(at + j, TOps.Fma(x3, TOps.Load(r3 + j), s));
        }

        for (; j < cw; j++)
        {
            float s = MathF.FusedMultiplyAdd(x[0], r0[j], at[j]);
            s = MathF.FusedMultiplyAdd(x[1], r1[j], s);
            s = MathF.FusedMultiplyAdd(x[2], r2[j], s);
            at[j] = MathF.FusedMultiplyAdd(x[3], r3[j], s);
        }
    }

    /// <summary>at[j] += x · r[j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row1<TOps, TV>(float* at, float x, float* r, int vec, int cw)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width;
        TV xv = TOps.Broadcast(x);
        int j = 0;
        for (; j < vec; j += width)
        {
            TOps.Store(at + j, TOps.Fma(xv, TOps.Load(r + j), TOps.Load(at + j)));
        }

        for (; j < cw; j++)
        {
            at[j] = MathF.FusedMultiplyAdd(x, r[j], at[j]);
        }
    }

    /// <summary>Rows4 on bf16 rows, widened in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4Bf16<TOps, TV>(float* at, float* x, ushort* r0, long ld, int vec, int cw)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width;
        ushort* r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld;
        TV x0 = TOps.Broadcast(x[0]), x1 = TOps.Broadcast(x[1]), x2 = TOps.Broadcast(x[2]), x3 = TOps.Broadcast(x[3]);
        int j = 0;
        for (; j < vec; j += width)
        {
            TV s = TOps.Fma(x0, TOps.LoadBf16(r0 + j), TOps.Load(at + j));
            s = TOps.Fma(x1, TOps.LoadBf16(r1 + j), s);
            s = TOps.Fma(x2, TOps.LoadBf16(r2 + j), s);
            TOps.Store(at + j, TOps.Fma(x3, TOps.LoadBf16(r3 + j), s));
        }

        for (; j < cw; j++)
        {
            float s = MathF.FusedMultiplyAdd(x[0], BFloat16.ToSingle(r0[j]), at[j]);
            s = MathF.FusedMultiplyAdd(x[1], BFloat16.ToSingle(r1[j]), s);
            s = MathF.FusedMultiplyAdd(x[2], BFloat16.ToSingle(r2[j]), s);
            at[j] = MathF.FusedMultiplyAdd(x[3], BFloat16.ToSingle(r3[j]), s);
        }
    }

    /// <summary>Row1 on a bf16 row, widened in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row1Bf16<TOps, TV>(float* at, float x, ushort* r, int vec, int cw)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width;
        TV xv = TOps.Broadcast(x);
        int j = 0;
        for (; j < vec; j += width)
        {
            TOps.Store(at + j, TOps.Fma(xv, TOps.LoadBf16(r + j), TOps.Load(at + j)));
        }

        for (; j < cw; j++)
        {
            at[j] = MathF.FusedMultiplyAdd(x, BFloat16.ToSingle(r[j]), at[j]);
        }
    }
}
