using System.Runtime.Intrinsics;

namespace GemmaScope.Onnx.Building;

/// <summary>
/// bf16 → float32, exact: a bfloat16 is the upper 16 bits of a binary32, so f32 bits = bf16 bits &lt;&lt; 16.
/// </summary>
internal static unsafe class BFloat16Widen
{
    public static void Run(ushort* src, float* dst, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var v = Vector512.Load(src + i);
                var (lo, hi) = Vector512.Widen(v);
                Vector512.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                Vector512.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 16);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector256.Load(src + i);
                var (lo, hi) = Vector256.Widen(v);
                Vector256.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                Vector256.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 8);
            }
        }

        for (; i < n; i++)
        {
            uint bits = (uint)src[i] << 16;
            dst[i] = BitConverter.UInt32BitsToSingle(bits);
        }
    }
}
