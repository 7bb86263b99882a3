using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using GemmaScope.Formats;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Widens f32, bf16 or f16 values at a mapped address to float32, exactly (bf16: the bits shifted left 16; f16: IEEE
/// conversion). Used for embedding rows and small vectors (norm weights); the GEMMs widen in registers instead.
/// </summary>
internal static unsafe class FloatWiden
{
    /// <summary>Bytes per element of a dtype the engine computes from.</summary>
    public static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.Float32 => 4,
        TensorDType.BFloat16 or TensorDType.Float16 => 2,
        _ => throw new NotSupportedException($"The engine computes from float32, bfloat16 or float16 weights, not {dtype}."),
    };

    /// <summary>Widens <c>dst.Length</c> values starting at <paramref name="src"/>.</summary>
    public static void ToSingle(void* src, TensorDType dtype, Span<float> dst)
    {
        int n = dst.Length;
        switch (dtype)
        {
            case TensorDType.Float32:
                new ReadOnlySpan<float>(src, n).CopyTo(dst);
                break;
            case TensorDType.Float16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src, n), dst);
                break;
            case TensorDType.BFloat16:
                Bf16(src, dst);
                break;
            default:
                throw new NotSupportedException($"The engine computes from float32, bfloat16 or float16 weights, not {dtype}.");
        }
    }

    /// <summary>
    /// Widens a small stored vector (a norm weight) into a new array. <paramref name="what"/> names the tensor for the
    /// exception when the byte count does not match.
    /// </summary>
    public static float[] ToArray(ReadOnlySpan<byte> src, TensorDType dtype, int count, string what)
    {
        long expected = (long)count * ElementSize(dtype);
        if (src.Length != expected)
        {
            throw new ArgumentException($"{what}: expected {count} {dtype} values ({expected} bytes), got {src.Length} bytes.", nameof(src));
        }

        var dst = new float[count];
        fixed (byte* p = src)
        {
            ToSingle(p, dtype, dst);
        }

        return dst;
    }

    private static void Bf16(void* src, Span<float> dst)
    {
        ushort* s = (ushort*)src;
        int n = dst.Length;
        int i = 0;
        fixed (float* d = dst)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 16 <= n; i += 16)
                {
                    Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(s + i).ToVector512Unsafe()), 16).AsSingle().Store(d + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 8 <= n; i += 8)
                {
                    Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(s + i).ToVector256Unsafe()), 16).AsSingle().Store(d + i);
                }
            }

            for (; i < n; i++)
            {
                d[i] = BitConverter.Int32BitsToSingle(s[i] << 16);
            }
        }
    }
}
