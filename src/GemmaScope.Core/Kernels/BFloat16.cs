using System.Runtime.CompilerServices;

namespace GemmaScope.Kernels;

/// <summary>
/// bfloat16 is the upper half of a float32. Widening is a 16-bit shift; narrowing rounds to nearest, ties to even:
/// bits + 0x7FFF + (bit 16 of bits), then keep the upper half. NaN stays NaN (quiet bit forced).
/// </summary>
internal static class BFloat16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000)
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }
}
