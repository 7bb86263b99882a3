namespace GemmaScope.Kernels;

/// <summary>
/// A one-time panel-major copy of W_enc for <see cref="JumpReLUPackedGemmKernel"/>: panel p holds columns
/// [p·NR, p·NR + NR) (NR = 4 vectors of the SIMD width it was built for) as d_in consecutive rows of NR values, so the
/// kernel reads each panel as one sequential stream instead of d_in scattered 256-byte pieces 4·d_sae bytes apart.
/// fp32 panels hold floats; bf16 panels hold bf16 with each row as 2 groups of Width 32-bit lanes, lane l of group v
/// carrying column (2v)·W + l in its low half and (2v+1)·W + l in its high half (widened with a shift and a mask).
/// The last panel is padded with zero columns whose threshold is +inf. Memory: the size of W_enc in its working
/// precision (4 or 2 bytes · d_in · d_sae, rounded up to whole panels) plus 8 bytes per padded column for bias and
/// threshold. Immutable after construction; freed by <see cref="Dispose"/>.
/// </summary>
internal sealed unsafe class PackedEncoder : IDisposable
{
    private readonly NativeBuffer _panels;
    private readonly NativeBuffer _epilogue;

    private PackedEncoder(in SaeWeights w, int width, int threads)
    {
        Width = width;
        NR = 4 * width;
        DIn = w.DIn;
        Bf16 = w.IsBFloat16;
        Panels = (w.DSae + NR - 1) / NR;
        long panelBytes = (long)DIn * NR * (Bf16 ? 2 : 4);
        _panels = new NativeBuffer(panelBytes * Panels);
        _epilogue = new NativeBuffer(2L * NR * Panels * sizeof(float));
        KBlock = ForcedKBlock ?? ChooseKBlock(DIn, NR * (Bf16 ? 2 : 4), CacheSizes.L2);
        var weights = w;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, part =>
        {
            var (p0, p1) = KernelJob.Share(Panels, part, threads);
            Fill(weights, p0, p1);
        });
    }

    /// <summary>Floats per vector this layout was built for.</summary>
    public int Width { get; }

    /// <summary>Columns per panel.</summary>
    public int NR { get; }

    public int DIn { get; }

    public bool Bf16 { get; }

    public int Panels { get; }

    /// <summary>
    /// Rows of a panel the kernel runs per pass: the largest equal split of d_in whose slice of a panel fits in half
    /// of L2 (the other half for the activation rows and accumulators), so that every token tile after the first reads
    /// that slice from L2. From the OS-reported L2 size (<see cref="CacheSizes"/>), not a tuned constant.
    /// </summary>
    public int KBlock { get; }

    /// <summary>Test switch: a K block to use instead of the L2-derived one (applies to copies built after it is set).</summary>
    internal static int? ForcedKBlock { get; set; }

    /// <summary>Bytes this copy holds.</summary>
    public long Bytes => _panels.Bytes + _epilogue.Bytes;

    /// <summary>Panel p's first row (fp32 floats or bf16 lane pairs).</summary>
    public byte* Panel(int p) => (byte*)_panels.Pointer + ((long)p * DIn * NR * (Bf16 ? 2 : 4));

    /// <summary>Panel p's bias[NR] then threshold[NR].</summary>
    public float* Epilogue(int p) => (float*)_epilogue.Pointer + (2L * NR * p);

    public static PackedEncoder Build(in SaeWeights w, int width, int threads) => new(w, width, Math.Max(1, threads));

    internal static int ChooseKBlock(int dIn, int bytesPerRow, long l2)
    {
        long max = Math.Max(16, l2 / 2 / bytesPerRow);
        long blocks = (dIn + max - 1) / max;
        return (int)((dIn + blocks - 1) / blocks);
    }

    public void Dispose()
    {
        _panels.Dispose();
        _epilogue.Dispose();
    }

    private void Fill(in SaeWeights w, int p0, int p1)
    {
        int nr = NR, dIn = DIn, width = Width;
        long dSae = w.DSae;
        for (int p = p0; p < p1; p++)
        {
            float* e = Epilogue(p);
            for (int c = 0; c < nr; c++)
            {
                long j = ((long)p * nr) + c;
                e[c] = j < dSae ? w.BEnc[j] : 0f;
                e[nr + c] = j < dSae ? w.Threshold[j] : float.PositiveInfinity;
            }
        }

        // Rows outer over a group of panels, so each W_enc row is read as one contiguous run of group·NR values.
        const int group = 16;
        for (int g0 = p0; g0 < p1; g0 += group)
        {
            int g1 = Math.Min(p1, g0 + group);
            for (int k = 0; k < dIn; k++)
            {
                for (int p = g0; p < g1; p++)
                {
                    long j0 = (long)p * nr, src = (k * dSae) + j0;
                    int cols = (int)Math.Min(nr, dSae - j0);
                    if (Bf16)
                    {
                        ushort* dst = (ushort*)Panel(p) + ((long)k * nr);
                        for (int c = 0; c < nr; c++)
                        {
                            int q = c / width, l = c % width;
                            dst[(2 * (((q >> 1) * width) + l)) + (q & 1)] = c < cols ? w.WEncBf16[src + c] : (ushort)0;
                        }
                    }
                    else
                    {
                        float* dst = (float*)Panel(p) + ((long)k * nr);
                        if (cols == nr)
                        {
                            new ReadOnlySpan<float>(w.WEnc + src, nr).CopyTo(new Span<float>(dst, nr));
                        }
                        else
                        {
                            for (int c = 0; c < nr; c++)
                            {
                                dst[c] = c < cols ? w.WEnc[src + c] : 0f;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// <summary>
/// The packed copies an SAE has built, one per SIMD width (only one in production; tests force several). A batch of 2+
/// tokens that finds no copy builds it under a lock and waits; a single token (which the in-place GEMV also serves)
/// starts the build on a thread-pool thread and goes on with the GEMV, so the first call after load stays fast (the
/// GEMV sums in the packed kernel's order, so the bits are the same either way; waiting instead measured ~0.8 s for
/// 2304 × 16384 bf16 against ~3 ms for the GEMV).
/// Readers of a finished copy take no lock. Owned and disposed by the SAE (first, before the weights it reads).
/// </summary>
internal sealed class PackedEncoderCache : IDisposable
{
    private readonly Lock _gate = new();
    private readonly PackedEncoder?[] _byWidth = new PackedEncoder?[5];
    private readonly int[] _started = new int[5];
    private readonly object _weightOwner;
    private bool _disposed;

    /// <param name="weightOwner">What keeps the weight memory alive (the SAE's owned buffers and map) during a background build.</param>
    public PackedEncoderCache(object weightOwner) => _weightOwner = weightOwner;

    /// <summary>Test switch: build synchronously even for one token, so a test knows which path ran.</summary>
    internal static bool BuildInBackground { get; set; } = true;

    /// <summary>Test switch for this SAE only: overrides <see cref="BuildInBackground"/> when set.</summary>
    internal bool? Background { get; set; }

    /// <summary>
    /// Test hook for this SAE only: runs on the building thread before each copy is built, holding the build lock, so a
    /// test can keep a build "in progress" (no copy published, batch calls waiting) while it makes calls, then release it.
    /// </summary>
    internal Action? BeforeBuild { get; set; }

    /// <summary>Bytes held by all copies built so far.</summary>
    public long Bytes
    {
        get
        {
            long n = 0;
            foreach (var p in _byWidth)
            {
                n += p?.Bytes ?? 0;
            }

            return n;
        }
    }

    /// <summary>The copy for this width, building it now if needed.</summary>
    public PackedEncoder Get(in SaeWeights w, int width, int threads)
    {
        int slot = System.Numerics.BitOperations.Log2((uint)width);
        var p = Volatile.Read(ref _byWidth[slot]);
        if (p is not null)
        {
            return p;
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            p = _byWidth[slot];
            if (p is null)
            {
                BeforeBuild?.Invoke();
                p = PackedEncoder.Build(w, width, threads);
                Volatile.Write(ref _byWidth[slot], p);
            }

            return p;
        }
    }

    /// <summary>The copy for this width if built; otherwise starts building it in the background and returns null.</summary>
    public PackedEncoder? TryGet(in SaeWeights w, int width, int threads)
    {
        int slot = System.Numerics.BitOperations.Log2((uint)width);
        var p = Volatile.Read(ref _byWidth[slot]);
        if (p is not null)
        {
            return p;
        }

        if (!(Background ?? BuildInBackground))
        {
            return Get(w, width, threads);
        }

        // Not under _gate: a build in progress holds it, and a single token must not wait for that build.
        if (Volatile.Read(ref _disposed) || Interlocked.Exchange(ref _started[slot], 1) != 0)
        {
            return null;
        }

        StartBuild(w, width, threads);
        return null;
    }

    // Separate from TryGet: a lambda's captured parameters would make TryGet allocate a closure on every call.
    private void StartBuild(SaeWeights weights, int width, int threads) => _ = Task.Run(() =>
    {
        try
        {
            _ = Get(weights, width, threads);
        }
        catch (ObjectDisposedException)
        {
            // The SAE was disposed before the build began: nothing to do.
        }

        GC.KeepAlive(_weightOwner);
    });

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var p in _byWidth)
            {
                p?.Dispose();
            }
        }
    }
}
