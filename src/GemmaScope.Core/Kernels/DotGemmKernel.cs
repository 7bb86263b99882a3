using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GemmaScope.Kernels;

/// <summary>
/// y[t, o] = Σ_i x[t, i] · W[o, i] for W stored [out, in] (a checkpoint's linear layer), x [tokens, in], y [tokens, out].
///
/// One summation order for every element, on every path (the "canonical 16-lane dot"): with in16 = in rounded down to
/// a multiple of 16, lane l (0..15) accumulates acc[l] = fma(x[i], W[o, i], acc[l]) for i = l, l + 16, l + 32, … &lt; in16
/// in increasing i; then s = ((acc[l] + acc[l + 8]) → (· + · [l + 4]) → (· + · [l + 2]) → lane 0 + lane 1), the fixed
/// tree that halving a Vector512 gives; then s = fma(x[i], W[o, i], s) for the tail i = in16 … in − 1 in order.
/// Each (t, o) owns its accumulator lanes and nothing is ever summed across tokens, outputs, threads or k blocks, so
/// the bits of y[t, o] do not depend on the token count, the tile it fell in, the thread split or the k blocking.
/// Narrower widths compute the same lanes: a Vector256 pass handles lanes 0–7 and a second pass lanes 8–15 (stride 16
/// in both), Vector128 four passes, scalar sixteen; so every path returns the same bits, not only the same path.
///
/// Blocking (choices only move work, never the order above): outputs are split over threads in tiles of NR = 4 rows;
/// within a part, blocks of NB output rows (sized to keep NB × in weights in half of L2) are swept by token tiles of
/// MR rows (6 on Vector512, 2 on the narrower paths), and each token tile walks in16 in k blocks of KC (so the x tile
/// stays in L1 while the block's weight rows stream from L2). Between k blocks the accumulators are parked in a
/// thread-local scratch tile, exactly, as fp32 vectors. The weights are read where they are, in their own dtype,
/// and widened in registers; nothing is packed.
/// </summary>
internal static unsafe class DotGemmKernel
{
    /// <summary>Output rows per register tile.</summary>
    public const int NR = 4;

    /// <summary>Output rows per one-token (GEMV) tile on Vector512: eight row streams in flight.</summary>
    public const int GemvRows = 8;

    /// <summary>Outputs per thread part and per output block: a multiple of every tile's output rows.</summary>
    public const int PartGrain = 8;

    /// <summary>Tuning switch (benchmarks): one-token calls use the 1 × 8 tile (default) or the 1 × 4 one.</summary>
    internal static bool Gemv8 { get; set; } = true;

    /// <summary>Lanes of the canonical dot product.</summary>
    public const int Lanes = 16;

    /// <summary>Token rows per register tile on a path of <paramref name="width"/> floats.</summary>
    public static int TokenTile(int width) => width == 16 ? 6 : 2;

    /// <summary>Computes outputs [o0, o1) of every token.</summary>
    /// <param name="x">[tokens, cols] activations.</param>
    /// <param name="tokens">Token rows.</param>
    /// <param name="w">Weights, [rows, cols] of <typeparamref name="TW"/>.</param>
    /// <param name="y">[tokens, rows] results.</param>
    /// <param name="o0">First output of this part.</param>
    /// <param name="o1">End of this part's outputs.</param>
    /// <param name="kc">k block in elements (a positive multiple of 16).</param>
    /// <param name="nb">Output block (a positive multiple of NR).</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV, TW>(float* x, int tokens, in WeightMatrix w, float* y, int o0, int o1, int kc, int nb)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TW : struct, IWeightElement
    {
        int cols = w.Cols, outs = w.Rows, width = TOps.Width, passes = Lanes / width, mr = TokenTile(width);
        int in16 = cols & ~(Lanes - 1);
        long ldw = (long)cols * TW.Bytes;
        byte* wBase = (byte*)w.Address;
        float* acc = KernelScratch.Get((long)mr * nb * Lanes);
        long accRow = (long)nb * Lanes;
        bool gemv = tokens == 1 && width == 16 && Gemv8;
        for (int ob = o0; ob < o1; ob += nb)
        {
            int oEnd = Math.Min(o1, ob + nb);
            for (int t0 = 0; t0 < tokens; t0 += mr)
            {
                int rows = Math.Min(mr, tokens - t0);
                float* xt = x + ((long)t0 * cols);
                for (int kb = 0; kb < in16; kb += kc)
                {
                    int len = Math.Min(kc, in16 - kb);
                    bool first = kb == 0;
                    if (gemv)
                    {
                        for (int oc = ob; oc < oEnd; oc += GemvRows)
                        {
                            byte* q = wBase + (oc * ldw) + ((long)kb * TW.Bytes);
                            int n = Math.Min(GemvRows, oEnd - oc);
                            Gemv<TOps, TV, TW>(xt + kb, q, ldw, n, len, acc + ((oc - ob) * Lanes), first);
                        }

                        continue;
                    }

                    for (int oc = ob; oc < oEnd; oc += NR)
                    {
                        // Missing rows of the last tile repeat the last real row; their lanes are computed and dropped.
                        byte* p0 = wBase + (oc * ldw) + ((long)kb * TW.Bytes);
                        byte* p1 = oc + 1 < oEnd ? p0 + ldw : p0;
                        byte* p2 = oc + 2 < oEnd ? p1 + ldw : p1;
                        byte* p3 = oc + 3 < oEnd ? p2 + ldw : p2;
                        float* a = acc + ((oc - ob) * Lanes);
                        for (int g = 0; g < passes; g++)
                        {
                            int off = g * width;
                            long woff = (long)off * TW.Bytes;
                            Dispatch<TOps, TV, TW>(rows, xt + kb + off, cols, p0 + woff, p1 + woff, p2 + woff, p3 + woff, len, a + off, accRow, first);
                        }
                    }
                }

                Finish<TW>(TOps.Width == 16, xt, rows, cols, in16, wBase + (ob * ldw), ldw, oEnd - ob, acc, accRow, y + ((long)t0 * outs) + ob, outs);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dispatch<TOps, TV, TW>(int rows, float* x, long ldx, byte* w0, byte* w1, byte* w2, byte* w3, int len, float* acc, long accRow, bool first)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TW : struct, IWeightElement
    {
        switch (rows)
        {
            case 1:
                Tile<TOps, TV, TW, Rows1>(x, ldx, w0, w1, w2, w3, len, acc, accRow, first);
                break;
            case 2:
                Tile<TOps, TV, TW, Rows2>(x, ldx, w0, w1, w2, w3, len, acc, accRow, first);
                break;
            case 3:
                Tile<TOps, TV, TW, Rows3>(x, ldx, w0, w1, w2, w3, len, acc, accRow, first);
                break;
            case 4:
                Tile<TOps, TV, TW, Rows4>(x, ldx, w0, w1, w2, w3, len, acc, accRow, first);
                break;
            case 5:
                Tile<TOps, TV, TW, Rows5>(x, ldx, w0, w1, w2, w3, len, acc, accRow, first);
                break;
            default:
                Tile<TOps, TV, TW, Rows6>(x, ldx, w0, w1, w2, w3, len, acc, accRow, first);
                break;
        }
    }

    /// <summary>
    /// One token against <paramref name="n"/> ≤ 8 weight rows (Vector512 only): eight independent accumulators hide
    /// the FMA latency and keep eight row streams in flight, which a bandwidth-bound decode needs. Missing rows repeat
    /// the last real one. Accumulators are parked as in <see cref="Tile"/> (row stride irrelevant: one token).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemv<TOps, TV, TW>(float* x, byte* w, long ldw, int n, int len, float* acc, bool first)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TW : struct, IWeightElement
    {
        byte* w0 = w;
        byte* w1 = n > 1 ? w0 + ldw : w0;
        byte* w2 = n > 2 ? w1 + ldw : w1;
        byte* w3 = n > 3 ? w2 + ldw : w2;
        byte* w4 = n > 4 ? w3 + ldw : w3;
        byte* w5 = n > 5 ? w4 + ldw : w4;
        byte* w6 = n > 6 ? w5 + ldw : w5;
        byte* w7 = n > 7 ? w6 + ldw : w6;
        TV c0 = TOps.Zero, c1 = TOps.Zero, c2 = TOps.Zero, c3 = TOps.Zero, c4 = TOps.Zero, c5 = TOps.Zero, c6 = TOps.Zero, c7 = TOps.Zero;
        if (!first)
        {
            c0 = TOps.Load(acc); c1 = TOps.Load(acc + 16); c2 = TOps.Load(acc + 32); c3 = TOps.Load(acc + 48);
            c4 = TOps.Load(acc + 64); c5 = TOps.Load(acc + 80); c6 = TOps.Load(acc + 96); c7 = TOps.Load(acc + 112);
        }

        for (nint i = 0; i < len; i += Lanes)
        {
            TV v = TOps.Load(x + i);
            c0 = TOps.Fma(v, TW.Load<TOps, TV>(w0, i), c0);
            c1 = TOps.Fma(v, TW.Load<TOps, TV>(w1, i), c1);
            c2 = TOps.Fma(v, TW.Load<TOps, TV>(w2, i), c2);
            c3 = TOps.Fma(v, TW.Load<TOps, TV>(w3, i), c3);
            c4 = TOps.Fma(v, TW.Load<TOps, TV>(w4, i), c4);
            c5 = TOps.Fma(v, TW.Load<TOps, TV>(w5, i), c5);
            c6 = TOps.Fma(v, TW.Load<TOps, TV>(w6, i), c6);
            c7 = TOps.Fma(v, TW.Load<TOps, TV>(w7, i), c7);
        }

        TOps.Store(acc, c0); TOps.Store(acc + 16, c1); TOps.Store(acc + 32, c2); TOps.Store(acc + 48, c3);
        TOps.Store(acc + 64, c4); TOps.Store(acc + 80, c5); TOps.Store(acc + 96, c6); TOps.Store(acc + 112, c7);
    }

    /// <summary>
    /// One TRows × NR register tile over elements [0, len) of the k block, stride 16 (one canonical lane group of
    /// TOps.Width lanes). Accumulators start at zero on the first k block, else from the parked tile, and are parked
    /// again at the end: acc[r · accRow + c · 16 + lane].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TOps, TV, TW, TRows>(float* x, long ldx, byte* w0, byte* w1, byte* w2, byte* w3, int len, float* acc, long accRow, bool first)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
        where TW : struct, IWeightElement
        where TRows : struct, IRowCount
    {
        int rows = TRows.Rows;
        float* x0 = x;
        float* x1 = rows > 1 ? x0 + ldx : x0;
        float* x2 = rows > 2 ? x1 + ldx : x1;
        float* x3 = rows > 3 ? x2 + ldx : x2;
        float* x4 = rows > 4 ? x3 + ldx : x3;
        float* x5 = rows > 5 ? x4 + ldx : x4;
        float* a0 = acc;
        float* a1 = a0 + accRow;
        float* a2 = a1 + accRow;
        float* a3 = a2 + accRow;
        float* a4 = a3 + accRow;
        float* a5 = a4 + accRow;
        TV c00 = TOps.Zero, c01 = TOps.Zero, c02 = TOps.Zero, c03 = TOps.Zero;
        TV c10 = TOps.Zero, c11 = TOps.Zero, c12 = TOps.Zero, c13 = TOps.Zero;
        TV c20 = TOps.Zero, c21 = TOps.Zero, c22 = TOps.Zero, c23 = TOps.Zero;
        TV c30 = TOps.Zero, c31 = TOps.Zero, c32 = TOps.Zero, c33 = TOps.Zero;
        TV c40 = TOps.Zero, c41 = TOps.Zero, c42 = TOps.Zero, c43 = TOps.Zero;
        TV c50 = TOps.Zero, c51 = TOps.Zero, c52 = TOps.Zero, c53 = TOps.Zero;
        if (!first)
        {
            c00 = TOps.Load(a0); c01 = TOps.Load(a0 + 16); c02 = TOps.Load(a0 + 32); c03 = TOps.Load(a0 + 48);
            if (TRows.Rows > 1)
            {
                c10 = TOps.Load(a1); c11 = TOps.Load(a1 + 16); c12 = TOps.Load(a1 + 32); c13 = TOps.Load(a1 + 48);
            }

            if (TRows.Rows > 2)
            {
                c20 = TOps.Load(a2); c21 = TOps.Load(a2 + 16); c22 = TOps.Load(a2 + 32); c23 = TOps.Load(a2 + 48);
            }

            if (TRows.Rows > 3)
            {
                c30 = TOps.Load(a3); c31 = TOps.Load(a3 + 16); c32 = TOps.Load(a3 + 32); c33 = TOps.Load(a3 + 48);
            }

            if (TRows.Rows > 4)
            {
                c40 = TOps.Load(a4); c41 = TOps.Load(a4 + 16); c42 = TOps.Load(a4 + 32); c43 = TOps.Load(a4 + 48);
            }

            if (TRows.Rows > 5)
            {
                c50 = TOps.Load(a5); c51 = TOps.Load(a5 + 16); c52 = TOps.Load(a5 + 32); c53 = TOps.Load(a5 + 48);
            }
        }

        for (nint i = 0; i < len; i += Lanes)
        {
            TV b0 = TW.Load<TOps, TV>(w0, i), b1 = TW.Load<TOps, TV>(w1, i), b2 = TW.Load<TOps, TV>(w2, i), b3 = TW.Load<TOps, TV>(w3, i);
            TV v = TOps.Load(x0 + i);
            c00 = TOps.Fma(v, b0, c00); c01 = TOps.Fma(v, b1, c01); c02 = TOps.Fma(v, b2, c02); c03 = TOps.Fma(v, b3, c03);
            if (TRows.Rows > 1)
            {
                v = TOps.Load(x1 + i);
                c10 = TOps.Fma(v, b0, c10); c11 = TOps.Fma(v, b1, c11); c12 = TOps.Fma(v, b2, c12); c13 = TOps.Fma(v, b3, c13);
            }

            if (TRows.Rows > 2)
            {
                v = TOps.Load(x2 + i);
                c20 = TOps.Fma(v, b0, c20); c21 = TOps.Fma(v, b1, c21); c22 = TOps.Fma(v, b2, c22); c23 = TOps.Fma(v, b3, c23);
            }

            if (TRows.Rows > 3)
            {
                v = TOps.Load(x3 + i);
                c30 = TOps.Fma(v, b0, c30); c31 = TOps.Fma(v, b1, c31); c32 = TOps.Fma(v, b2, c32); c33 = TOps.Fma(v, b3, c33);
            }

            if (TRows.Rows > 4)
            {
                v = TOps.Load(x4 + i);
                c40 = TOps.Fma(v, b0, c40); c41 = TOps.Fma(v, b1, c41); c42 = TOps.Fma(v, b2, c42); c43 = TOps.Fma(v, b3, c43);
            }

            if (TRows.Rows > 5)
            {
                v = TOps.Load(x5 + i);
                c50 = TOps.Fma(v, b0, c50); c51 = TOps.Fma(v, b1, c51); c52 = TOps.Fma(v, b2, c52); c53 = TOps.Fma(v, b3, c53);
            }
        }

        TOps.Store(a0, c00); TOps.Store(a0 + 16, c01); TOps.Store(a0 + 32, c02); TOps.Store(a0 + 48, c03);
        if (TRows.Rows > 1)
        {
            TOps.Store(a1, c10); TOps.Store(a1 + 16, c11); TOps.Store(a1 + 32, c12); TOps.Store(a1 + 48, c13);
        }

        if (TRows.Rows > 2)
        {
            TOps.Store(a2, c20); TOps.Store(a2 + 16, c21); TOps.Store(a2 + 32, c22); TOps.Store(a2 + 48, c23);
        }

        if (TRows.Rows > 3)
        {
            TOps.Store(a3, c30); TOps.Store(a3 + 16, c31); TOps.Store(a3 + 32, c32); TOps.Store(a3 + 48, c33);
        }

        if (TRows.Rows > 4)
        {
            TOps.Store(a4, c40); TOps.Store(a4 + 16, c41); TOps.Store(a4 + 32, c42); TOps.Store(a4 + 48, c43);
        }

        if (TRows.Rows > 5)
        {
            TOps.Store(a5, c50); TOps.Store(a5 + 16, c51); TOps.Store(a5 + 32, c52); TOps.Store(a5 + 48, c53);
        }
    }

    /// <summary>
    /// The canonical horizontal sum and scalar tail of a token tile's <paramref name="count"/> outputs, written to y.
    /// </summary>
    private static void Finish<TW>(bool wide, float* x, int rows, int cols, int in16, byte* w, long ldw, int count, float* acc, long accRow, float* y, int ldy)
        where TW : struct, IWeightElement
    {
        wide &= Avx512F.IsSupported && in16 > 0;
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + ((long)r * cols);
            float* ar = acc + (r * accRow);
            float* yr = y + ((long)r * ldy);
            int c = 0;
            if (wide)
            {
                // Four outputs per step with the same tree in vector lanes (an accumulator slot past count holds a
                // repeated or stale row; its sum is computed and dropped).
                for (; c < count; c += 4)
                {
                    var s4 = Sum16x4(ar + (c * Lanes));
                    int n = Math.Min(4, count - c);
                    if (n == 4 && in16 == cols)
                    {
                        s4.Store(yr + c);
                        continue;
                    }

                    for (int q = 0; q < n; q++)
                    {
                        float s = s4.GetElement(q);
                        byte* wr = w + ((c + q) * ldw);
                        for (int i = in16; i < cols; i++)
                        {
                            s = MathF.FusedMultiplyAdd(xr[i], TW.LoadScalar(wr, i), s);
                        }

                        yr[c + q] = s;
                    }
                }

                continue;
            }

            for (; c < count; c++)
            {
                float s = in16 > 0 ? Sum16(ar + (c * Lanes)) : 0f;
                byte* wr = w + (c * ldw);
                for (int i = in16; i < cols; i++)
                {
                    s = MathF.FusedMultiplyAdd(xr[i], TW.LoadScalar(wr, i), s);
                }

                yr[c] = s;
            }
        }
    }

    /// <summary>
    /// <see cref="Sum16"/> of four adjacent accumulators at once, the same additions in vector lanes: 128-bit block
    /// shuffles pair the halves of two accumulators, then their quarters, then in-block permutes pair the last lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum16x4(float* a)
    {
        var v0 = Vector512.Load(a);
        var v1 = Vector512.Load(a + 16);
        var v2 = Vector512.Load(a + 32);
        var v3 = Vector512.Load(a + 48);
        // Blocks [v0.0, v0.1, v1.0, v1.1] + [v0.2, v0.3, v1.2, v1.3]: lane l of each half is acc[l] + acc[l + 8].
        var u01 = Avx512F.Shuffle4x128(v0, v1, 0x44) + Avx512F.Shuffle4x128(v0, v1, 0xEE);
        var u23 = Avx512F.Shuffle4x128(v2, v3, 0x44) + Avx512F.Shuffle4x128(v2, v3, 0xEE);
        // Block c is now accumulator c's lanes l + (l + 4).
        var q = Avx512F.Shuffle4x128(u01, u23, 0x88) + Avx512F.Shuffle4x128(u01, u23, 0xDD);
        var p = q + Avx512F.Permute4x32(q, 0x4E);
        var s = p + Avx512F.Permute4x32(p, 0xB1);
        return Avx512F.PermuteVar16x32(s, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower();
    }

    /// <summary>The canonical tree over 16 lanes: halves, then quarters, then pairs, then the last two.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sum16(float* a)
    {
        float h0 = a[0] + a[8], h1 = a[1] + a[9], h2 = a[2] + a[10], h3 = a[3] + a[11];
        float h4 = a[4] + a[12], h5 = a[5] + a[13], h6 = a[6] + a[14], h7 = a[7] + a[15];
        float q0 = h0 + h4, q1 = h1 + h5, q2 = h2 + h6, q3 = h3 + h7;
        float p0 = q0 + q2, p1 = q1 + q3;
        return p0 + p1;
    }
}
