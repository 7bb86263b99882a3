using System.Runtime.InteropServices;

namespace GemmaScope.Kernels;

/// <summary>
/// Per-thread, 64-byte aligned scratch that only grows, so kernels allocate nothing per call after warm-up.
/// Kernel threads are long-lived (<see cref="KernelWorkers"/> and the callers), so the few hundred KB each holds are
/// kept for the thread's lifetime.
/// </summary>
internal static unsafe class KernelScratch
{
    [ThreadStatic]
    private static float* _buffer;

    [ThreadStatic]
    private static long _capacity;

    /// <summary>At least <paramref name="floats"/> floats; contents undefined. Valid until the next call on this thread.</summary>
    public static float* Get(long floats)
    {
        if (_capacity < floats)
        {
            if (_buffer != null)
            {
                NativeMemory.AlignedFree(_buffer);
            }

            _buffer = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
            _capacity = floats;
        }

        return _buffer;
    }
}
