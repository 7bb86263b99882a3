using System.Runtime.CompilerServices;

namespace GemmaScope.Kernels;

/// <summary>
/// Encode from the one-time panel-major copy of W_enc (<see cref="PackedEncoder"/>), no per-call packing:
///   f[t, j] = JumpReLU(b_enc[j] + Σ_i x[t, i] · W_enc[i, j], threshold[j]).
/// For each panel of NR = 4 vectors of columns and each K block of rows (sized from L2, see
/// <see cref="PackedEncoder.KBlock"/>), every tile of up to 6 token rows keeps a 6 × NR block of accumulators in
/// registers while the panel slice streams: from memory for the first tile, from L2 for the rest. With more than one
/// K block the partial sums park in a per-thread [tokens × NR] buffer between blocks. The JumpReLU epilogue is fused
/// into the last block (dense store or sparse collector). bf16 panels are widened in registers (shift / mask of
/// bf16 pairs), so they move half the bytes.
/// </summary>
internal static unsafe class JumpReLUPackedGemmKernel
{
    private const int MR = JumpReLUGemmKernel.MR;

    /// <summary>Runs panels [p0, p1) for all tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV>(in SaeWeights w, PackedEncoder pk, float* x, int tokens, float* f, SparseCollector? sink, int p0, int p1)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        if (pk.Bf16)
        {
            Run<TOps, TV, Bf16Panel>(w, pk, x, tokens, f, sink, p0, p1);
        }
        else
        {
            Run<TOps, TV, F32Panel>(w, pk, x, tokens, f, sink, p0, p1);
        }
    }

    private static void Run<TOps, TV, TP>(in SaeWeights w, PackedEncoder pk, float* x, int tokens, float* f, SparseCollector? sink, int p0, int p1)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TP : struct
    {
        int nr = pk.NR, dIn = w.DIn, dSae = w.DSae, kc = pk.KBlock;
        int rowBytes = nr * (typeof(TP) == typeof(Bf16Panel) ? 2 : 4);
        float* park = kc < dIn ? KernelScratch.Get((long)tokens * nr) : null;
        for (int p = p0; p < p1; p++)
        {
            byte* panel = pk.Panel(p);
            float* bias = pk.Epilogue(p), thr = bias + nr;
            int j0 = p * nr, cols = Math.Min(nr, dSae - j0);
            for (int k0 = 0; k0 < dIn; k0 += kc)
            {
                int kk = Math.Min(kc, dIn - k0);
                byte* b = panel + ((long)k0 * rowBytes);
                for (int m0 = 0; m0 < tokens; m0 += MR)
                {
                    float* a = x + ((long)m0 * dIn) + k0;
                    float* cin = k0 == 0 ? null : park + ((long)m0 * nr);
                    float* cout = k0 + kk == dIn ? null : park + ((long)m0 * nr);
                    switch (tokens - m0)
                    {
                        case 1:
                            Tile<TOps, TV, TP, Rows1>(a, dIn, b, kk, cin, cout, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 2:
                            Tile<TOps, TV, TP, Rows2>(a, dIn, b, kk, cin, cout, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 3:
                            Tile<TOps, TV, TP, Rows3>(a, dIn, b, kk, cin, cout, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 4:
                            Tile<TOps, TV, TP, Rows4>(a, dIn, b, kk, cin, cout, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        case 5:
                            Tile<TOps, TV, TP, Rows5>(a, dIn, b, kk, cin, cout, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                        default:
                            Tile<TOps, TV, TP, Rows6>(a, dIn, b, kk, cin, cout, bias, thr, f, dSae, m0, j0, cols, sink);
                            break;
                    }
                }
            }
        }
    }

    /// <summary>
    /// One TRows × NR tile over k rows of a panel: accumulators start at zero (cin null) or at a parked partial sum,
    /// and end parked (cout not null) or through the epilogue.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TOps, TV, TP, TRows>(float* a, int lda, byte* bp, int k, float* cin, float* cout, float* bias, float* thr, float* f, long ldf, int m0, int j0, int cols, SparseCollector? sink)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TP : struct
        where TRows : struct, IRowCount
    {
        int rows = TRows.Rows;
        int width = TOps.Width, nr = 4 * width;
        float* tile = stackalloc float[MR * 4 * 16];
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
        if (cin != null)
        {
            c00 = TOps.Load(cin); c01 = TOps.Load(cin + width); c02 = TOps.Load(cin + (2 * width)); c03 = TOps.Load(cin + (3 * width));
            if (TRows.Rows > 1)
            {
                float* r = cin + nr;
                c10 = TOps.Load(r); c11 = TOps.Load(r + width); c12 = TOps.Load(r + (2 * width)); c13 = TOps.Load(r + (3 * width));
            }

            if (TRows.Rows > 2)
            {
                float* r = cin + (2 * nr);
                c20 = TOps.Load(r); c21 = TOps.Load(r + width); c22 = TOps.Load(r + (2 * width)); c23 = TOps.Load(r + (3 * width));
            }

            if (TRows.Rows > 3)
            {
                float* r = cin + (3 * nr);
                c30 = TOps.Load(r); c31 = TOps.Load(r + width); c32 = TOps.Load(r + (2 * width)); c33 = TOps.Load(r + (3 * width));
            }

            if (TRows.Rows > 4)
            {
                float* r = cin + (4 * nr);
                c40 = TOps.Load(r); c41 = TOps.Load(r + width); c42 = TOps.Load(r + (2 * width)); c43 = TOps.Load(r + (3 * width));
            }

            if (TRows.Rows > 5)
            {
                float* r = cin + (5 * nr);
                c50 = TOps.Load(r); c51 = TOps.Load(r + width); c52 = TOps.Load(r + (2 * width)); c53 = TOps.Load(r + (3 * width));
            }
        }

        bool bf16 = typeof(TP) == typeof(Bf16Panel);
        int step = bf16 ? 2 * nr : 4 * nr;
        byte* bEnd = bp + ((long)k * step);
        nint p = 0;
        do
        {
            TV b0, b1, b2, b3;
            if (bf16)
            {
                uint* u = (uint*)bp;
                b0 = TOps.LoadBf16Low(u); b1 = TOps.LoadBf16High(u); b2 = TOps.LoadBf16Low(u + width); b3 = TOps.LoadBf16High(u + width);
            }
            else
            {
                float* b = (float*)bp;
                b0 = TOps.Load(b); b1 = TOps.Load(b + width); b2 = TOps.Load(b + (2 * width)); b3 = TOps.Load(b + (3 * width));
            }

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

            bp += step;
            p++;
        }
        while (bp < bEnd);

        // Park the tile in memory before any call (live accumulators across a call would be spilled in the loop).
        float* t0 = cout != null ? cout : tile;
        TOps.Store(t0, c00); TOps.Store(t0 + width, c01); TOps.Store(t0 + (2 * width), c02); TOps.Store(t0 + (3 * width), c03);
        if (TRows.Rows > 1)
        {
            float* t = t0 + nr;
            TOps.Store(t, c10); TOps.Store(t + width, c11); TOps.Store(t + (2 * width), c12); TOps.Store(t + (3 * width), c13);
        }

        if (TRows.Rows > 2)
        {
            float* t = t0 + (2 * nr);
            TOps.Store(t, c20); TOps.Store(t + width, c21); TOps.Store(t + (2 * width), c22); TOps.Store(t + (3 * width), c23);
        }

        if (TRows.Rows > 3)
        {
            float* t = t0 + (3 * nr);
            TOps.Store(t, c30); TOps.Store(t + width, c31); TOps.Store(t + (2 * width), c32); TOps.Store(t + (3 * width), c33);
        }

        if (TRows.Rows > 4)
        {
            float* t = t0 + (4 * nr);
            TOps.Store(t, c40); TOps.Store(t + width, c41); TOps.Store(t + (2 * width), c42); TOps.Store(t + (3 * width), c43);
        }

        if (TRows.Rows > 5)
        {
            float* t = t0 + (5 * nr);
            TOps.Store(t, c50); TOps.Store(t + width, c51); TOps.Store(t + (2 * width), c52); TOps.Store(t + (3 * width), c53);
        }

        if (cout != null)
        {
            return;
        }

        for (int r = 0; r < rows; r++)
        {
            JumpReLUGemmKernel.Emit<TOps, TV>(tile + (r * nr), bias, thr, f + ((m0 + r) * ldf) + j0, cols, sink, m0 + r, j0);
        }
    }

    /// <summary>Panel element type: float32.</summary>
    private readonly struct F32Panel;

    /// <summary>Panel element type: bfloat16 pairs.</summary>
    private readonly struct Bf16Panel;
}
