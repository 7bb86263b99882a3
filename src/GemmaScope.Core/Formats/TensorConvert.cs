using System.Buffers.Binary;

using System.Runtime.Intrinsics;

using GemmaScope.Kernels;

namespace GemmaScope.Formats;

/// <summary>
/// Turns a stored tensor into the SAE's working layout: row-major, little-endian, float32 or bfloat16.
/// Where the file already holds exactly that, the mapped bytes are used in place; otherwise one converted copy is made.
/// </summary>
internal static unsafe class TensorConvert
{
    /// <summary>float32 view of <paramref name="t"/>: in place when possible, else a converted copy added to <paramref name="owned"/>.</summary>
    public static float* AsFloat32(RawTensor t, float scale, List<IDisposable> owned)
    {
        if (IsPlain(t, TensorDType.Float32) && scale == 1f)
        {
            return (float*)t.Data;
        }

        var buf = new NativeBuffer(t.ElementCount * 4);
        owned.Add(buf);
        ToFloat32(t, scale, (float*)buf.Pointer);
        return (float*)buf.Pointer;
    }

    /// <summary>bfloat16 view of <paramref name="t"/> (round to nearest even), in place when the file stores little-endian bf16.</summary>
    public static ushort* AsBFloat16(RawTensor t, float scale, List<IDisposable> owned)
    {
        if (IsPlain(t, TensorDType.BFloat16) && scale == 1f)
        {
            return (ushort*)t.Data;
        }

        long n = t.ElementCount;
        var buf = new NativeBuffer(n * 2);
        owned.Add(buf);
        var dst = (ushort*)buf.Pointer;
        if (IsPlain(t, TensorDType.Float32))
        {
            Narrow((float*)t.Data, scale, dst, n);
            return dst;
        }

        using var wide = new NativeBuffer(n * 4);
        ToFloat32(t, scale, (float*)wide.Pointer);
        Narrow((float*)wide.Pointer, 1f, dst, n);
        return dst;
    }

    /// <summary>Stored exactly as the kernels want it: row-major, little-endian (in a memory map or a buffer the SAE owns).</summary>
    private static bool IsPlain(RawTensor t, TensorDType dtype) =>
        t.DType == dtype && !t.BigEndian && !t.FortranOrder && BitConverter.IsLittleEndian;

    private static void Narrow(float* src, float scale, ushort* dst, long n)
    {
        for (long i = 0; i < n; i++)
        {
            dst[i] = BFloat16.FromSingle(src[i] * scale);
        }
    }

    /// <summary>Every element as float32 × <paramref name="scale"/>, written at its row-major index.</summary>
    private static void ToFloat32(RawTensor t, float scale, float* dst)
    {
        long n = t.ElementCount;
        byte* p = t.Data;
        int size = t.DType.Size();
        bool big = t.BigEndian;

        // Fortran order stores the first index fastest. Walk the storage in that order, keeping the multi-index and
        // its row-major offset: stepping index k adds rowStride[k]; wrapping it subtracts dims[k] × rowStride[k].
        var dims = t.Shape;
        int rank = dims.Length;
        var rowStride = new long[rank];
        var index = new long[rank];
        long stride = 1;
        for (int k = rank - 1; k >= 0; k--)
        {
            rowStride[k] = stride;
            stride *= dims[k];
        }

        long d = 0;
        for (long s = 0; s < n; s++)
        {
            var span = new ReadOnlySpan<byte>(p + (s * size), size);
            float v = t.DType switch
            {
                TensorDType.Float32 => big ? BinaryPrimitives.ReadSingleBigEndian(span) : BinaryPrimitives.ReadSingleLittleEndian(span),
                TensorDType.Float64 => (float)(big ? BinaryPrimitives.ReadDoubleBigEndian(span) : BinaryPrimitives.ReadDoubleLittleEndian(span)),
                TensorDType.Float16 => (float)(big ? BinaryPrimitives.ReadHalfBigEndian(span) : BinaryPrimitives.ReadHalfLittleEndian(span)),
                TensorDType.BFloat16 => BFloat16.ToSingle(big ? BinaryPrimitives.ReadUInt16BigEndian(span) : BinaryPrimitives.ReadUInt16LittleEndian(span)),
                _ => throw new InvalidOperationException(),
            };

            if (!t.FortranOrder)
            {
                dst[s] = v * scale;
                continue;
            }

            dst[d] = v * scale;
            for (int k = 0; k < rank; k++)
            {
                if (++index[k] < dims[k])
                {
                    d += rowStride[k];
                    break;
                }

                index[k] = 0;
                d -= (dims[k] - 1) * rowStride[k];
            }
        }
    }

    /// <summary>Index of the first NaN or infinity in <paramref name="p"/>[0..n), or -1.</summary>
    public static long FindNonFinite(float* p, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // x - x is 0 for finite x and NaN for NaN or ±inf: one subtract and compare per lane.
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(p + i);
                if (!Vector512.EqualsAll(v - v, Vector512<float>.Zero))
                {
                    break;
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(p + i);
                if (!Vector256.EqualsAll(v - v, Vector256<float>.Zero))
                {
                    break;
                }
            }
        }

        for (; i < n; i++)
        {
            if (!float.IsFinite(p[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Index of the first NaN or infinity among bfloat16 values (exponent bits all ones), or -1.</summary>
    public static long FindNonFinite(ushort* p, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var mask = Vector512.Create((ushort)0x7F80);
            for (; i + 32 <= n; i += 32)
            {
                if (Vector512.EqualsAny(Vector512.Load(p + i) & mask, mask))
                {
                    break;
                }
            }
        }

        for (; i < n; i++)
        {
            if ((p[i] & 0x7F80) == 0x7F80)
            {
                return i;
            }
        }

        return -1;
    }

}
