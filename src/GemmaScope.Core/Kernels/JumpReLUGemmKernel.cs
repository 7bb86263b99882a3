using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace GemmaScope.Kernels;

/// <summary>
/// Encode as a register-blocked GEMM with the JumpReLU epilogue fused into each tile:
///   f[t, j] = JumpReLU(b_enc[j] + Σ_i x[t, i] · W_enc[i, j], threshold[j]).
/// Blocking: the caller's part owns a range of column slivers of NR = 4 vectors (64 floats on AVX-512). For each sliver,
/// W_enc[:, j0..j0+NR) is packed once (8 slivers at a time) into a contiguous thread-local [d_in × NR] buffer (bf16 is widened here, so the
/// GEMM itself is fp32); for d_in ≤ 4608 that is ≤ 1.2 MB, read from L2 by the microkernel while the 6 token rows of x
/// stream through L1. The microkernel keeps a 6 × NR tile in 24 vector registers over the whole of d_in, so each output
/// is written once, already through bias, threshold and ReLU, densely or straight into a sparse collector.
/// </summary>
internal static unsafe class JumpReLUGemmKernel
{
    /// <summary>Token rows per register tile.</summary>
    public const int MR = 6;

    /// <summary>Vectors per register tile row; NR = 4 × Width columns.</summary>
    public const int NV = 4;

    /// <summary>Slivers packed together (their rows are adjacent in W_enc, so packing reads g·NR contiguous floats).</summary>
    public const int Group = 8;

    /// <summary>How many rows ahead packing prefetches.</summary>
    private const int PrefetchRows = 4;

    /// <summary>Runs column slivers [s0, s1) for all tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV>(in SaeWeights w, float* x, int tokens, float* f, SparseCollector? sink, int s0, int s1)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int nr = NV * TOps.Width, dIn = w.DIn, dSae = w.DSae;
        long stride = ((long)dIn * nr) + (2L * nr);
        float* buffers = KernelScratch.Get(stride * Group);
        for (int s = s0; s < s1; s += Group)
        {
            int g = Math.Min(Group, s1 - s);
            PackGroup<TOps, TV>(w, s, g, buffers, stride);
            for (int q = 0; q < g; q++)
            {
                int j0 = (s + q) * nr, cols = Math.Min(nr, dSae - j0);
                float* b = buffers + (q * stride), bias = b + ((long)dIn * nr), thr = bias + nr;
                for (int m0 = 0; m0 < tokens; m0 += MR)
                {
                    float* a = x + ((long)m0 * dIn);
                    switch (tokens - m0)
                    {
                        case 1:
                            Tile<TOps, TV, Rows1>(a, dIn, b, dIn, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 2:
                            Tile<TOps, TV, Rows2>(a, dIn, b, dIn, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 3:
                            Tile<TOps, TV, Rows3>(a, dIn, b, dIn, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 4:
                            Tile<TOps, TV, Rows4>(a, dIn, b, dIn, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 5:
                            Tile<TOps, TV, Rows5>(a, dIn, b, dIn, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        default:
                            Tile<TOps, TV, Rows6>(a, dIn, b, dIn, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs slivers [s, s+g) into buffers (each [d_in × NR] then bias[NR], threshold[NR]). Full slivers are copied
    /// row by row across the whole group, so each W_enc row is read as one contiguous run of g·NR values (2 KB for 8
    /// fp32 slivers) instead of g scattered 256-byte pieces: a strided walk touching a new page per row per sliver
    /// defeats the prefetcher and the TLB and was the bound for small token counts.
    /// </summary>
    private static void PackGroup<TOps, TV>(in SaeWeights w, int s, int g, float* buffers, long stride)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width, nr = NV * width, dIn = w.DIn, j0 = s * nr;
        long dSae = w.DSae;
        int full = (int)Math.Min(g, (dSae - j0) / nr);
        for (int q = 0; q < g; q++)
        {
            float* bias = buffers + (q * stride) + ((long)dIn * nr);
            int jq = j0 + (q * nr), cols = (int)Math.Min(nr, dSae - jq);
            for (int c = 0; c < nr; c++)
            {
                bias[c] = c < cols ? w.BEnc[jq + c] : 0f;
                bias[nr + c] = c < cols ? w.Threshold[jq + c] : float.PositiveInfinity;
            }
        }

        if (full < g)
        {
            int jq = j0 + (full * nr);
            Pack<TOps, TV>(w, jq, (int)(dSae - jq), buffers + (full * stride));
        }

        if (w.IsBFloat16)
        {
            for (int k = 0; k < dIn; k++)
            {
                ushort* src = w.WEncBf16 + (k * dSae) + j0;
                float* dst = buffers + ((long)k * nr);
                if (Sse.IsSupported)
                {
                    ushort* next = src + (PrefetchRows * dSae);
                    for (int c = 0; c < full * nr; c += 32)
                    {
                        Sse.Prefetch0(next + c);
                    }
                }

                for (int q = 0; q < full; q++, src += nr, dst += stride)
                {
                    TOps.Store(dst, TOps.LoadBf16(src));
                    TOps.Store(dst + width, TOps.LoadBf16(src + width));
                    TOps.Store(dst + (2 * width), TOps.LoadBf16(src + (2 * width)));
                    TOps.Store(dst + (3 * width), TOps.LoadBf16(src + (3 * width)));
                }
            }
        }
        else
        {
            for (int k = 0; k < dIn; k++)
            {
                float* src = w.WEnc + (k * dSae) + j0;
                float* dst = buffers + ((long)k * nr);
                if (Sse.IsSupported)
                {
                    // Rows are 64 KB apart, so the hardware prefetcher does not run ahead across them.
                    float* next = src + (PrefetchRows * dSae);
                    for (int c = 0; c < full * nr; c += 16)
                    {
                        Sse.Prefetch0(next + c);
                    }
                }

                for (int q = 0; q < full; q++, src += nr, dst += stride)
                {
                    TOps.Store(dst, TOps.Load(src));
                    TOps.Store(dst + width, TOps.Load(src + width));
                    TOps.Store(dst + (2 * width), TOps.Load(src + (2 * width)));
                    TOps.Store(dst + (3 * width), TOps.Load(src + (3 * width)));
                }
            }
        }
    }

    /// <summary>Packs the last, partial sliver W_enc[:, j0..j0+cols) as [d_in × NR] with zero columns past cols.</summary>
    private static void Pack<TOps, TV>(in SaeWeights w, int j0, int cols, float* b)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int nr = NV * TOps.Width, dIn = w.DIn;
        long dSae = w.DSae;
        for (int k = 0; k < dIn; k++, b += nr)
        {
            long row = (k * dSae) + j0;
            for (int c = 0; c < nr; c++)
            {
                b[c] = c >= cols ? 0f : w.IsBFloat16 ? BFloat16.ToSingle(w.WEncBf16[row + c]) : w.WEnc[row + c];
            }
        }
    }

    /// <summary>
    /// One TRows × NR tile (TRows ≤ MR) over all of d_in.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TOps, TV, TRows>(float* a, int lda, float* b, int k, float* bias, float* thr, float* f, long ldf, int m0, int j0, int cols, SparseCollector? sink)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TRows : struct, IRowCount
    {
        // A compile-time row count: the JIT drops the FMAs and registers of absent rows in the last, partial tile.
        int rows = TRows.Rows;
        int width = TOps.Width;
        float* tile = stackalloc float[MR * NV * 16];
        float* a0 = a;
        float* a1 = rows > 1 ? a0 + lda : a0;
        float* a2 = rows > 2 ? a1 + lda : a1;
        float* a3 = rows > 3 ? a2 + lda : a2;
        float* a4 = rows > 4 ? a3 + lda : a3;
        float* a5 = rows > 5 ? a4 + lda : a4;
        TV c00 = TOps.Zero, c01 = TOps.Zero, c02 = TOps.Zero, c03 = TOps.Zero;
        TV c10 = TOps.Zero, c11 = TOps.Zero, c12 = TOps.Zero, c13 = TOps.Zero;
        TV c20 = TOps.Zero, c21 = TOps.Zero, c22 = TOps.Zero, c23 = TOps.Zero;
        TV c30 = TOps.Zero, c31 = TOps.Zero, c32 = TOps.Zero, c33 = TOps.Zero;
        TV c40 = TOps.Zero, c41 = TOps.Zero, c42 = TOps.Zero, c43 = TOps.Zero;
        TV c50 = TOps.Zero, c51 = TOps.Zero, c52 = TOps.Zero, c53 = TOps.Zero;
        float* bEnd = b + ((long)k * 4 * width);
        nint p = 0;
        do
        {
            TV b0 = TOps.Load(b), b1 = TOps.Load(b + width), b2 = TOps.Load(b + (2 * width)), b3 = TOps.Load(b + (3 * width));
            TV v = TOps.Broadcast(a0[p]);
            c00 = TOps.Fma(v, b0, c00); c01 = TOps.Fma(v, b1, c01); c02 = TOps.Fma(v, b2, c02); c03 = TOps.Fma(v, b3, c03);
            if (TRows.Rows > 1)
            {
                v = TOps.Broadcast(a1[p]);
                c10 = TOps.Fma(v, b0, c10); c11 = TOps.Fma(v, b1, c11); c12 = TOps.Fma(v, b2, c12); c13 = TOps.Fma(v, b3, c13);
            }

            if (TRows.Rows > 2)
            {
                v = TOps.Broadcast(a2[p]);
                c20 = TOps.Fma(v, b0, c20); c21 = TOps.Fma(v, b1, c21); c22 = TOps.Fma(v, b2, c22); c23 = TOps.Fma(v, b3, c23);
            }

            if (TRows.Rows > 3)
            {
                v = TOps.Broadcast(a3[p]);
                c30 = TOps.Fma(v, b0, c30); c31 = TOps.Fma(v, b1, c31); c32 = TOps.Fma(v, b2, c32); c33 = TOps.Fma(v, b3, c33);
            }

            if (TRows.Rows > 4)
            {
                v = TOps.Broadcast(a4[p]);
                c40 = TOps.Fma(v, b0, c40); c41 = TOps.Fma(v, b1, c41); c42 = TOps.Fma(v, b2, c42); c43 = TOps.Fma(v, b3, c43);
            }

            if (TRows.Rows > 5)
            {
                v = TOps.Broadcast(a5[p]);
                c50 = TOps.Fma(v, b0, c50); c51 = TOps.Fma(v, b1, c51); c52 = TOps.Fma(v, b2, c52); c53 = TOps.Fma(v, b3, c53);
            }

            b += 4 * width;
            p++;
        }
        while (b < bEnd);

        // Park the tile in memory before any call: accumulators live across a call would make the JIT spill them on
        // every iteration of the loop above.
        int nr = NV * width;
        TOps.Store(tile, c00); TOps.Store(tile + width, c01); TOps.Store(tile + (2 * width), c02); TOps.Store(tile + (3 * width), c03);
        float* t1 = tile + nr;
        TOps.Store(t1, c10); TOps.Store(t1 + width, c11); TOps.Store(t1 + (2 * width), c12); TOps.Store(t1 + (3 * width), c13);
        float* t2 = t1 + nr;
        TOps.Store(t2, c20); TOps.Store(t2 + width, c21); TOps.Store(t2 + (2 * width), c22); TOps.Store(t2 + (3 * width), c23);
        float* t3 = t2 + nr;
        TOps.Store(t3, c30); TOps.Store(t3 + width, c31); TOps.Store(t3 + (2 * width), c32); TOps.Store(t3 + (3 * width), c33);
        float* t4 = t3 + nr;
        TOps.Store(t4, c40); TOps.Store(t4 + width, c41); TOps.Store(t4 + (2 * width), c42); TOps.Store(t4 + (3 * width), c43);
        float* t5 = t4 + nr;
        TOps.Store(t5, c50); TOps.Store(t5 + width, c51); TOps.Store(t5 + (2 * width), c52); TOps.Store(t5 + (3 * width), c53);
        for (int r = 0; r < rows; r++)
        {
            Emit<TOps, TV>(tile + (r * nr), bias, thr, f + ((m0 + r) * ldf) + j0, cols, sink, m0 + r, j0);
        }
    }

    /// <summary>Epilogue of one tile row (in place in the tile): bias, JumpReLU, then a dense store or the sparse collector.</summary>
    internal static void Emit<TOps, TV>(float* tmp, float* bias, float* thr, float* dst, int cols, SparseCollector? sink, int token, int j0)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width;
        TV f0 = TOps.JumpReLU(TOps.Add(TOps.Load(tmp), TOps.Load(bias)), TOps.Load(thr));
        TV f1 = TOps.JumpReLU(TOps.Add(TOps.Load(tmp + width), TOps.Load(bias + width)), TOps.Load(thr + width));
        TV f2 = TOps.JumpReLU(TOps.Add(TOps.Load(tmp + (2 * width)), TOps.Load(bias + (2 * width))), TOps.Load(thr + (2 * width)));
        TV f3 = TOps.JumpReLU(TOps.Add(TOps.Load(tmp + (3 * width)), TOps.Load(bias + (3 * width))), TOps.Load(thr + (3 * width)));
        if (sink is null && cols == NV * width)
        {
            TOps.Store(dst, f0);
            TOps.Store(dst + width, f1);
            TOps.Store(dst + (2 * width), f2);
            TOps.Store(dst + (3 * width), f3);
            return;
        }

        TOps.Store(tmp, f0);
        TOps.Store(tmp + width, f1);
        TOps.Store(tmp + (2 * width), f2);
        TOps.Store(tmp + (3 * width), f3);
        if (sink is null)
        {
            new ReadOnlySpan<float>(tmp, cols).CopyTo(new Span<float>(dst, cols));
            return;
        }

        // Padded columns have threshold +inf, so every set lane is a real feature.
        ulong all = TOps.NonZeroMask(f0) | ((ulong)TOps.NonZeroMask(f1) << width)
            | ((ulong)TOps.NonZeroMask(f2) << (2 * width)) | ((ulong)TOps.NonZeroMask(f3) << (3 * width));
        while (all != 0)
        {
            int c = System.Numerics.BitOperations.TrailingZeroCount(all);
            sink.Add(token, j0 + c, tmp[c]);
            all &= all - 1;
        }
    }
}

/// <summary>A tile's row count as a type, so each count gets its own compiled microkernel.</summary>
internal interface IRowCount
{
    static abstract int Rows { get; }
}

internal readonly struct Rows1 : IRowCount
{
    public static int Rows => 1;
}

internal readonly struct Rows2 : IRowCount
{
    public static int Rows => 2;
}

internal readonly struct Rows3 : IRowCount
{
    public static int Rows => 3;
}

internal readonly struct Rows4 : IRowCount
{
    public static int Rows => 4;
}

internal readonly struct Rows5 : IRowCount
{
    public static int Rows => 5;
}

internal readonly struct Rows6 : IRowCount
{
    public static int Rows => 6;
}
