using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GemmaScope.Kernels;

/// <summary>
/// Encode for a handful of tokens, where the GEMM is memory-bound on W_enc (each weight is used `tokens` times):
///   f[t, j] = JumpReLU(b_enc[j] + Σ_i x[t, i] · W_enc[i, j], threshold[j]).
/// Streams W_enc exactly once, four rows at a time over a chunk of up to 1024 contiguous columns, into
/// per-token accumulators that stay in L1. bf16 weights are widened in registers, so they move half the bytes.
/// No packing: packing would read the same bytes and add a write.
/// </summary>
internal static unsafe class JumpReLUGemvKernel
{
    /// <summary>
    /// Most tokens this path is used for: up to here it streams W_enc at memory speed, where the GEMM would first pack
    /// (an extra pass) and waste part of its 6-row tiles. Settable for tuning and tests.
    /// </summary>
    internal static int MaxTokens { get; set; } = 8;

    /// <summary>The same for bf16 weights, whose GEMM path also pays for widening in its pack.</summary>
    internal static int MaxTokensBf16 { get; set; } = 16;

    /// <summary>
    /// Columns per accumulator chunk: tokens × chunk fp32 accumulators plus four chunk-wide weight rows must stay in
    /// L1 (48 KB here), so rows of 4 KB (whole pages: 1024 fp32 or 2048 bf16 columns) for few tokens, fewer above.
    /// One token is pure streaming: 32 KB row runs (measured ~10 % faster than 8 KB) with accumulators in L1/L2.
    /// </summary>
    public static int ChunkFor(int tokens, bool bf16) => tokens == 1 ? (bf16 ? 16384 : 8192) : tokens <= 2 ? (bf16 ? 4096 : 2048) : tokens <= 4 ? 1024 : tokens <= 8 ? 512 : 256;

    /// <summary>Runs columns [c0, c1) for all tokens; c0 is a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV>(in SaeWeights w, float* x, int tokens, float* f, SparseCollector? sink, int c0, int c1)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        int width = TOps.Width, dIn = w.DIn;
        long dSae = w.DSae;
        int chunk = ChunkFor(tokens, w.IsBFloat16);
        // Measured: prefetching the next row group pays for bf16 from 2 tokens (where the loop is not purely
        // memory-bound) and for fp32 from 3 tokens; at 1 token (both types) and 2 fp32 tokens the hardware prefetcher
        // alone streams faster (bf16, 1 token, 1 thread: ~35 vs ~30 GF/s with 8 rows per pass; Rows8Bf16Pairs
        // prefetches along its rows instead).
        PrefetchRows = (w.IsBFloat16 && tokens > 1) || tokens >= PrefetchFromTokens;
        float* acc = KernelScratch.Get((long)tokens * chunk);
        for (int jc = c0; jc < c1; jc += chunk)
        {
            int cw = Math.Min(chunk, c1 - jc), vec = cw - (cw % width);

            // AVX-512 bf16: widen 32 at a time without shuffles (see Rows4Bf16Pairs); accumulators are then kept
            // de-interleaved per 32 columns and put back in order before the epilogue.
            bool pairs = typeof(TOps) == typeof(Simd512) && w.IsBFloat16;
            if (pairs)
            {
                vec = cw - (cw % 32);
            }
            new Span<float>(acc, tokens * chunk).Clear();
            int i = 0;
            if (pairs && tokens == 1)
            {
                // One token: eight rows per pass halve the accumulator load/store traffic (the 64 KB accumulator row
                // lives in L2) and keep eight weight streams in flight for the hardware prefetcher.
                for (; i + 8 <= dIn; i += 8)
                {
                    Rows8Bf16Pairs(acc, x + i, w.WEncBf16 + (i * dSae) + jc, dSae, vec, cw);
                }
            }

            for (; i < dIn; i += 4)
            {
                // Rows outer, tokens inner: the 4 rows of this chunk (≤ 16 KB) are read from memory once and from L1 after.
                int n = Math.Min(4, dIn - i);
                for (int t = 0; t < tokens; t++)
                {
                    float* xt = x + ((long)t * dIn) + i, at = acc + (t * chunk);
                    if (w.IsBFloat16)
                    {
                        ushort* r = w.WEncBf16 + (i * dSae) + jc;
                        if (n == 4)
                        {
                            if (pairs)
                            {
                                Rows4Bf16Pairs(at, xt, r, dSae, vec, cw);
                            }
                            else
                            {
                                Rows4Bf16<TOps, TV>(at, xt, r, dSae, vec, cw);
                            }
                        }
                        else
                        {
                            for (int q = 0; q < n; q++)
                            {
                                if (pairs)
                                {
                                    Row1Bf16Pairs(at, xt[q], r + (q * dSae), vec, cw);
                                }
                                else
                                {
                                    Row1Bf16<TOps, TV>(at, xt[q], r + (q * dSae), vec, cw);
                                }
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
                if (pairs)
                {
                    Interleave(acc + (t * chunk), vec);
                }

                Epilogue<TOps, TV>(w, acc + (t * chunk), f + (t * dSae) + jc, jc, cw, vec, sink, t);
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
        long ahead = PrefetchRows ? PrefetchDistanceRows * ld : 0;
        for (; j < vec; j += width)
        {
            if (ahead != 0)
            {
                Prefetch(r0 + ahead + j, r1 + ahead + j, r2 + ahead + j, r3 + ahead + j);
            }
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
        long ahead = PrefetchRows ? PrefetchDistanceRows * ld : 0;
        for (; j < vec; j += width)
        {
            if (ahead != 0)
            {
                Prefetch(r0 + ahead + j, r1 + ahead + j, r2 + ahead + j, r3 + ahead + j);
            }
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

    /// <summary>
    /// Four bf16 rows, 32 columns per step: a 32-bit lane holding bf16 pair (c, c+1) gives column c as lane &lt;&lt; 16 and
    /// column c+1 as lane &amp; 0xFFFF0000, two single-cycle ALU ops instead of a cross-lane widening shuffle per 16.
    /// at[0..16) of each 32-column block accumulates the even columns, at[16..32) the odd ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4Bf16Pairs(float* at, float* x, ushort* r0, long ld, int vec, int cw)
    {
        ushort* r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld;
        var x0 = Vector512.Create(x[0]);
        var x1 = Vector512.Create(x[1]);
        var x2 = Vector512.Create(x[2]);
        var x3 = Vector512.Create(x[3]);
        var hi = Vector512.Create(0xFFFF0000u);
        int j = 0;
        long ahead = PrefetchRows ? PrefetchDistanceRows * ld : 0;
        for (; j < vec; j += 32)
        {
            if (ahead != 0)
            {
                Prefetch(r0 + ahead + j, r1 + ahead + j, r2 + ahead + j, r3 + ahead + j);
            }
            var p0 = Vector512.Load((uint*)(r0 + j));
            var p1 = Vector512.Load((uint*)(r1 + j));
            var p2 = Vector512.Load((uint*)(r2 + j));
            var p3 = Vector512.Load((uint*)(r3 + j));
            var e = Vector512.FusedMultiplyAdd(x0, (p0 << 16).AsSingle(), Vector512.Load(at + j));
            var o = Vector512.FusedMultiplyAdd(x0, (p0 & hi).AsSingle(), Vector512.Load(at + j + 16));
            e = Vector512.FusedMultiplyAdd(x1, (p1 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x1, (p1 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x2, (p2 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x2, (p2 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x3, (p3 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x3, (p3 & hi).AsSingle(), o);
            e.Store(at + j);
            o.Store(at + j + 16);
        }

        for (; j < cw; j++)
        {
            float s = MathF.FusedMultiplyAdd(x[0], BFloat16.ToSingle(r0[j]), at[j]);
            s = MathF.FusedMultiplyAdd(x[1], BFloat16.ToSingle(r1[j]), s);
            s = MathF.FusedMultiplyAdd(x[2], BFloat16.ToSingle(r2[j]), s);
            at[j] = MathF.FusedMultiplyAdd(x[3], BFloat16.ToSingle(r3[j]), s);
        }
    }

    /// <summary><see cref="Rows4Bf16Pairs"/> over eight rows (one token).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows8Bf16Pairs(float* at, float* x, ushort* r0, long ld, int vec, int cw)
    {
        ushort* r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld, r4 = r3 + ld, r5 = r4 + ld, r6 = r5 + ld, r7 = r6 + ld;
        var x0 = Vector512.Create(x[0]);
        var x1 = Vector512.Create(x[1]);
        var x2 = Vector512.Create(x[2]);
        var x3 = Vector512.Create(x[3]);
        var x4 = Vector512.Create(x[4]);
        var x5 = Vector512.Create(x[5]);
        var x6 = Vector512.Create(x[6]);
        var x7 = Vector512.Create(x[7]);
        var hi = Vector512.Create(0xFFFF0000u);
        int j = 0;
        // Prefetch 1 KB ahead along each row (not rows ahead, which measured slower): ~6 % faster at one thread,
        // as it starts each next page before the hardware prefetcher would. Near the end of the last rows this
        // touches up to 1 KB past the matrix, which a prefetch hint may do (it never faults).
        const int ahead = 512;
        for (; j < vec; j += 32)
        {
            Prefetch(r0 + ahead + j, r1 + ahead + j, r2 + ahead + j, r3 + ahead + j);
            Prefetch(r4 + ahead + j, r5 + ahead + j, r6 + ahead + j, r7 + ahead + j);
            var p0 = Vector512.Load((uint*)(r0 + j));
            var p1 = Vector512.Load((uint*)(r1 + j));
            var p2 = Vector512.Load((uint*)(r2 + j));
            var p3 = Vector512.Load((uint*)(r3 + j));
            var p4 = Vector512.Load((uint*)(r4 + j));
            var p5 = Vector512.Load((uint*)(r5 + j));
            var p6 = Vector512.Load((uint*)(r6 + j));
            var p7 = Vector512.Load((uint*)(r7 + j));
            // One FMA chain per column, rows in order, as in every other encode kernel: two partial sums per parity
            // gave other bits than the same token in a batch or through the packed copy (issue 20). Successive j
            // steps are independent, so out-of-order execution overlaps their chains.
            var e = Vector512.FusedMultiplyAdd(x0, (p0 << 16).AsSingle(), Vector512.Load(at + j));
            var o = Vector512.FusedMultiplyAdd(x0, (p0 & hi).AsSingle(), Vector512.Load(at + j + 16));
            e = Vector512.FusedMultiplyAdd(x1, (p1 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x1, (p1 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x2, (p2 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x2, (p2 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x3, (p3 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x3, (p3 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x4, (p4 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x4, (p4 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x5, (p5 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x5, (p5 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x6, (p6 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x6, (p6 & hi).AsSingle(), o);
            e = Vector512.FusedMultiplyAdd(x7, (p7 << 16).AsSingle(), e);
            o = Vector512.FusedMultiplyAdd(x7, (p7 & hi).AsSingle(), o);
            e.Store(at + j);
            o.Store(at + j + 16);
        }

        for (; j < cw; j++)
        {
            float s = at[j];
            for (int q = 0; q < 8; q++)
            {
                s = MathF.FusedMultiplyAdd(x[q], BFloat16.ToSingle(r0[(q * ld) + j]), s);
            }

            at[j] = s;
        }
    }

    /// <summary>One bf16 row in the even/odd layout of <see cref="Rows4Bf16Pairs"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row1Bf16Pairs(float* at, float x, ushort* r, int vec, int cw)
    {
        var xv = Vector512.Create(x);
        var hi = Vector512.Create(0xFFFF0000u);
        int j = 0;
        for (; j < vec; j += 32)
        {
            var p = Vector512.Load((uint*)(r + j));
            Vector512.FusedMultiplyAdd(xv, (p << 16).AsSingle(), Vector512.Load(at + j)).Store(at + j);
            Vector512.FusedMultiplyAdd(xv, (p & hi).AsSingle(), Vector512.Load(at + j + 16)).Store(at + j + 16);
        }

        for (; j < cw; j++)
        {
            at[j] = MathF.FusedMultiplyAdd(x, BFloat16.ToSingle(r[j]), at[j]);
        }
    }

    /// <summary>Puts each 32-column block of even/odd accumulators back in column order.</summary>
    private static void Interleave(float* at, int vec)
    {
        var lo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23u);
        var hi = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31u);
        for (int j = 0; j < vec; j += 32)
        {
            var e = Vector512.Load(at + j);
            var o = Vector512.Load(at + j + 16);
            Avx512F.PermuteVar16x32x2(e, lo.AsInt32(), o).Store(at + j);
            Avx512F.PermuteVar16x32x2(e, hi.AsInt32(), o).Store(at + j + 16);
        }
    }

    internal static int PrefetchFromTokens { get; set; } = 3;

    /// <summary>How many rows ahead the GEMV prefetches (a multiple of its 4-row group).</summary>
    internal static int PrefetchDistanceRows { get; set; } = 8;

    /// <summary>Whether to prefetch the next row group (helps from ~4 tokens, where the loop is not purely streaming).</summary>
    [ThreadStatic]
    private static bool PrefetchRows;

    /// <summary>
    /// Touches the same columns PrefetchDistanceRows rows ahead (two 4-row groups: 8 rows × 4–8 KB of lead): the hardware prefetcher
    /// stops at page ends and the rows are 64 KB apart, so without this each page starts with a demand miss.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(void* a, void* b, void* c, void* d)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(a);
            Sse.Prefetch0(b);
            Sse.Prefetch0(c);
            Sse.Prefetch0(d);
        }
    }
}
