using System.Runtime.Intrinsics;

namespace GemmaScope.Kernels;

/// <summary>The SIMD width a kernel runs with.</summary>
internal enum KernelIsa
{
    /// <summary>Widest the machine accelerates.</summary>
    Auto,

    /// <summary>16 floats per vector (AVX-512).</summary>
    Vector512,

    /// <summary>8 floats per vector (AVX2 / AVX-512VL).</summary>
    Vector256,

    /// <summary>4 floats per vector (SSE / NEON).</summary>
    Vector128,

    /// <summary>One float at a time.</summary>
    Scalar,
}

/// <summary>
/// Picks the kernel width at run time. <see cref="ForcedIsa"/> lets tests run the narrower paths on a wide machine;
/// a forced width the machine does not accelerate falls back to the next narrower one.
/// </summary>
internal static class KernelSelector
{
    /// <summary>Test switch: the width every kernel uses (Auto = widest available). Not for concurrent use by tests.</summary>
    internal static KernelIsa ForcedIsa { get; set; } = KernelIsa.Auto;

    public static KernelIsa Current
    {
        get
        {
            var f = ForcedIsa;
            if ((f is KernelIsa.Auto or KernelIsa.Vector512) && Vector512.IsHardwareAccelerated)
            {
                return KernelIsa.Vector512;
            }

            if ((f is KernelIsa.Auto or KernelIsa.Vector512 or KernelIsa.Vector256) && Vector256.IsHardwareAccelerated)
            {
                return KernelIsa.Vector256;
            }

            if (f != KernelIsa.Scalar && Vector128.IsHardwareAccelerated)
            {
                return KernelIsa.Vector128;
            }

            return KernelIsa.Scalar;
        }
    }
}
