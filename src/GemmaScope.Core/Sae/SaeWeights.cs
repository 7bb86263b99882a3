using System.Runtime.InteropServices;

namespace GemmaScope;

/// <summary>
/// The five tensors of a JumpReLU SAE as raw pointers, for the kernels. W_enc is [d_in, d_sae] and W_dec [d_sae, d_in],
/// row-major, both either float32 (<see cref="WEnc"/>, <see cref="WDec"/>) or bfloat16 bits (<see cref="WEncBf16"/>,
/// <see cref="WDecBf16"/>); exactly one pair is non-null. Biases and thresholds are always float32.
/// The memory is owned by <see cref="JumpReLUSae"/> (or its memory map) and never written after load.
/// </summary>
internal readonly unsafe struct SaeWeights
{
    public int DIn { get; init; }

    public int DSae { get; init; }

    public float* WEnc { get; init; }

    public float* WDec { get; init; }

    public ushort* WEncBf16 { get; init; }

    public ushort* WDecBf16 { get; init; }

    public float* BEnc { get; init; }

    public float* BDec { get; init; }

    public float* Threshold { get; init; }

    public bool IsBFloat16 => WEncBf16 != null;

    /// <summary>The lazily built panel-major copies of W_enc, or null when <see cref="SaeLoadOptions.PackEncoder"/> is off.</summary>
    public Kernels.PackedEncoderCache? Packed { get; init; }
}

/// <summary>64-byte aligned native memory that an SAE owns (converted or copied weights).</summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    private nint _p;

    /// <summary>Bytes of native buffers allocated on the calling thread so far (lets tests bound what a load allocates).</summary>
    [ThreadStatic]
    private static long t_allocated;

    public static long AllocatedOnThread => t_allocated;

    public NativeBuffer(long bytes)
    {
        t_allocated += bytes;
        Bytes = bytes;
        _p = (nint)HugePages.Alloc(bytes);
        GC.AddMemoryPressure(Math.Max(bytes, 1));
    }

    ~NativeBuffer() => Free();

    public long Bytes { get; }

    public void* Pointer => (void*)_p;

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        var p = Interlocked.Exchange(ref _p, 0);
        if (p != 0)
        {
            NativeMemory.AlignedFree((void*)p);
            GC.RemoveMemoryPressure(Math.Max(Bytes, 1));
        }
    }
}

/// <summary>
/// Weight matrices are streamed end to end by the kernels; with 4 KB pages a 151 MB matrix costs ~37k TLB misses per
/// pass. Large buffers are therefore 2 MB aligned and, on Linux, advised as transparent huge pages (MADV_HUGEPAGE;
/// a no-op where THP is off).
/// </summary>
internal static unsafe partial class HugePages
{
    private const long Huge = 2 << 20;

    public static void* Alloc(long bytes)
    {
        if (bytes < 2 * Huge)
        {
            return NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 64), 64);
        }

        long rounded = (bytes + Huge - 1) / Huge * Huge;
        void* p = NativeMemory.AlignedAlloc((nuint)rounded, (nuint)Huge);
        if (OperatingSystem.IsLinux())
        {
            _ = Madvise(p, (nuint)rounded, 14);
        }

        return p;
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* addr, nuint length, int advice);
}
