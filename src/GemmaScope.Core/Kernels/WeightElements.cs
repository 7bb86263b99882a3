using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Kernels;

/// <summary>
/// How a weight element is stored and widened to float32 in registers, as a type so each dtype gets its own compiled
/// GEMM body (the widening inlines into the FMA loop; no widened copy of the weights is ever made).
/// </summary>
internal unsafe interface IWeightElement
{
    /// <summary>Bytes per element.</summary>
    static abstract int Bytes { get; }

    /// <summary>Elements <c>[i, i + TOps.Width)</c> of the row at <paramref name="row"/>, widened exactly to float32.</summary>
    static abstract TV Load<TOps, TV>(byte* row, nint i)
        where TOps : struct, ISimdOps<TV>
        where TV : struct;

    /// <summary>Element <paramref name="i"/> of the row at <paramref name="row"/> as float32.</summary>
    static abstract float LoadScalar(byte* row, nint i);
}

/// <summary>float32 weights: loaded as they are.</summary>
internal readonly unsafe struct F32Element : IWeightElement
{
    public static int Bytes => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Load<TOps, TV>(byte* row, nint i)
        where TOps : struct, ISimdOps<TV>
        where TV : struct => TOps.Load((float*)row + i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint i) => ((float*)row)[i];
}

/// <summary>bfloat16 weights: the upper half of a float32, widened by a 16-bit shift (exact).</summary>
internal readonly unsafe struct BF16Element : IWeightElement
{
    public static int Bytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Load<TOps, TV>(byte* row, nint i)
        where TOps : struct, ISimdOps<TV>
        where TV : struct => TOps.LoadBf16((ushort*)row + i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint i) => BFloat16.ToSingle(((ushort*)row)[i]);
}

/// <summary>
/// IEEE binary16 weights, widened exactly in integer lanes: with h the 15 magnitude bits, (h &lt;&lt; 13) read as a
/// float32 has the half's mantissa and its exponent biased by 15 instead of 127, so multiplying it by 2^112 gives the
/// value exactly, subnormal halves included (they become float32 subnormals that the power-of-two scale makes normal).
/// Infinity and NaN (exponent 31) get the float32 exponent 255 with the mantissa kept; the sign bit moves to bit 31.
/// </summary>
internal readonly unsafe struct F16Element : IWeightElement
{
    private const float Scale = 5.192296858534828e33f; // 2^112
    private const uint InfNan = 0x7C00u << 13;

    public static int Bytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Load<TOps, TV>(byte* row, nint i)
        where TOps : struct, ISimdOps<TV>
        where TV : struct
    {
        ushort* p = (ushort*)row + i;
        if (typeof(TV) == typeof(Vector512<float>))
        {
            var v = Widen512(Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()));
            return Unsafe.As<Vector512<float>, TV>(ref v);
        }

        if (typeof(TV) == typeof(Vector256<float>))
        {
            var v = Widen256(Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe()));
            return Unsafe.As<Vector256<float>, TV>(ref v);
        }

        if (typeof(TV) == typeof(Vector128<float>))
        {
            var v = Widen128(Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)p).AsUInt16()));
            return Unsafe.As<Vector128<float>, TV>(ref v);
        }

        float f = (float)BitConverter.UInt16BitsToHalf(*p);
        return Unsafe.As<float, TV>(ref f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadScalar(byte* row, nint i) => (float)BitConverter.UInt16BitsToHalf(((ushort*)row)[i]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen512(Vector512<uint> h)
    {
        var sign = Vector512.ShiftLeft(h & Vector512.Create(0x8000u), 16);
        var mag = Vector512.ShiftLeft(h & Vector512.Create(0x7FFFu), 13);
        var finite = mag.AsSingle() * Vector512.Create(Scale);
        var special = (mag | Vector512.Create(0x7F800000u)).AsSingle();
        var isSpecial = Vector512.GreaterThanOrEqual(mag, Vector512.Create(InfNan)).AsSingle();
        return (Vector512.ConditionalSelect(isSpecial, special, finite).AsUInt32() | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen256(Vector256<uint> h)
    {
        var sign = Vector256.ShiftLeft(h & Vector256.Create(0x8000u), 16);
        var mag = Vector256.ShiftLeft(h & Vector256.Create(0x7FFFu), 13);
        var finite = mag.AsSingle() * Vector256.Create(Scale);
        var special = (mag | Vector256.Create(0x7F800000u)).AsSingle();
        var isSpecial = Vector256.GreaterThanOrEqual(mag, Vector256.Create(InfNan)).AsSingle();
        return (Vector256.ConditionalSelect(isSpecial, special, finite).AsUInt32() | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen128(Vector128<uint> h)
    {
        var sign = Vector128.ShiftLeft(h & Vector128.Create(0x8000u), 16);
        var mag = Vector128.ShiftLeft(h & Vector128.Create(0x7FFFu), 13);
        var finite = mag.AsSingle() * Vector128.Create(Scale);
        var special = (mag | Vector128.Create(0x7F800000u)).AsSingle();
        var isSpecial = Vector128.GreaterThanOrEqual(mag, Vector128.Create(InfNan)).AsSingle();
        return (Vector128.ConditionalSelect(isSpecial, special, finite).AsUInt32() | sign).AsSingle();
    }
}
