using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Transcendental helpers shared by the element-wise kernels. tanh is evaluated in float64 and rounded once, so it is
/// within half an ulp of the true value for every float32 input (PyTorch's float32 tanh is within one ulp).
/// </summary>
/// <remarks>
/// tanh(u) = sign(u) · (1 − e) / (1 + e) with e = exp(−2|u|), in float64; below |u| &lt; 1e-4 the cancellation in 1 − e
/// is avoided with u − u³/3 (the next term, 2u⁵/15, is below 1e-20 relative there). ±∞ gives ±1, NaN stays NaN.
/// Element-wise kernels push their tail through the same vector function (padded), so an element's result never
/// depends on where it sits in a row.
/// </remarks>
internal static class VectorMath
{
    private const double SmallTanh = 1e-4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Tanh(Vector512<double> u)
    {
        var a = Vector512.Abs(u);
        var e = Vector512.Exp(a * -2.0);
        var t = (Vector512<double>.One - e) / (Vector512<double>.One + e);
        var series = a - (a * a * a * (1.0 / 3.0));
        t = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(SmallTanh)), series, t);
        return Vector512.CopySign(t, u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Tanh(Vector256<double> u)
    {
        var a = Vector256.Abs(u);
        var e = Vector256.Exp(a * -2.0);
        var t = (Vector256<double>.One - e) / (Vector256<double>.One + e);
        var series = a - (a * a * a * (1.0 / 3.0));
        t = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(SmallTanh)), series, t);
        return Vector256.CopySign(t, u);
    }

    /// <summary>tanh of 16 floats, computed in float64 and rounded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> u)
    {
        var (lo, hi) = Vector512.Widen(u);
        return Vector512.Narrow(Tanh(lo), Tanh(hi));
    }

    /// <summary>tanh of 8 floats, computed in float64 and rounded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> u)
    {
        var (lo, hi) = Vector256.Widen(u);
        return Vector256.Narrow(Tanh(lo), Tanh(hi));
    }

    /// <summary>Scalar tanh (machines without SIMD): float64 and rounded once, like the vector paths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh(float u) => (float)Math.Tanh(u);
}
