using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Kernels;

/// <summary>
/// One SIMD width's operations, as static members of a struct so a kernel written once as a generic method over
/// <c>TOps</c> is compiled by the JIT into a separate, fully inlined body per width (no virtual calls on the hot path).
/// </summary>
/// <typeparam name="TV">The vector type (or <see cref="float"/> for the scalar path).</typeparam>
internal unsafe interface ISimdOps<TV>
    where TV : struct
{
    /// <summary>Floats per vector.</summary>
    static abstract int Width { get; }

    static abstract TV Zero { get; }

    static abstract TV Load(float* p);

    /// <summary>Loads <see cref="Width"/> bfloat16 values and widens them exactly to float32 (shift left 16).</summary>
    static abstract TV LoadBf16(ushort* p);

    /// <summary>Loads <see cref="Width"/> 32-bit lanes, each a pair of bfloat16, and widens the low halves (lane &lt;&lt; 16).</summary>
    static abstract TV LoadBf16Low(uint* p);

    /// <summary>The high halves of the same lanes (lane &amp; 0xFFFF0000): no shuffle, unlike <see cref="LoadBf16"/>.</summary>
    static abstract TV LoadBf16High(uint* p);

    static abstract void Store(float* p, TV v);

    static abstract TV Broadcast(float x);

    /// <summary>a · b + c with one rounding.</summary>
    static abstract TV Fma(TV a, TV b, TV c);

    static abstract TV Add(TV a, TV b);

    /// <summary>JumpReLU: pre where pre &gt; threshold and pre &gt; 0, else 0 (NaN gives 0).</summary>
    static abstract TV JumpReLU(TV pre, TV threshold);

    /// <summary>Bit i set where lane i is not zero.</summary>
    static abstract uint NonZeroMask(TV v);
}

/// <summary>AVX-512 width.</summary>
internal readonly unsafe struct Simd512 : ISimdOps<Vector512<float>>
{
    public static int Width => 16;

    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* p) => Vector512.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadBf16(ushort* p) =>
        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadBf16Low(uint* p) => Vector512.ShiftLeft(Vector512.Load(p), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadBf16High(uint* p) => (Vector512.Load(p) & Vector512.Create(0xFFFF0000u)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector512<float> v) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float x) => Vector512.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> JumpReLU(Vector512<float> pre, Vector512<float> threshold) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(pre, threshold) & Vector512.GreaterThan(pre, Vector512<float>.Zero), pre, Vector512<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonZeroMask(Vector512<float> v) => (uint)(~Vector512.Equals(v, Vector512<float>.Zero)).ExtractMostSignificantBits() & 0xFFFFu;
}

/// <summary>AVX2 width.</summary>
internal readonly unsafe struct Simd256 : ISimdOps<Vector256<float>>
{
    public static int Width => 8;

    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* p) => Vector256.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadBf16(ushort* p) =>
        Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe()), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadBf16Low(uint* p) => Vector256.ShiftLeft(Vector256.Load(p), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadBf16High(uint* p) => (Vector256.Load(p) & Vector256.Create(0xFFFF0000u)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector256<float> v) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float x) => Vector256.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> JumpReLU(Vector256<float> pre, Vector256<float> threshold) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(pre, threshold) & Vector256.GreaterThan(pre, Vector256<float>.Zero), pre, Vector256<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonZeroMask(Vector256<float> v) => (~Vector256.Equals(v, Vector256<float>.Zero)).ExtractMostSignificantBits() & 0xFFu;
}

/// <summary>SSE / NEON width.</summary>
internal readonly unsafe struct Simd128 : ISimdOps<Vector128<float>>
{
    public static int Width => 4;

    public static Vector128<float> Zero => Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* p) => Vector128.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadBf16(ushort* p) =>
        Vector128.ShiftLeft(Vector128.WidenLower(Vector128.CreateScalar(*(ulong*)p).AsUInt16()), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadBf16Low(uint* p) => Vector128.ShiftLeft(Vector128.Load(p), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadBf16High(uint* p) => (Vector128.Load(p) & Vector128.Create(0xFFFF0000u)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector128<float> v) => v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float x) => Vector128.Create(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> JumpReLU(Vector128<float> pre, Vector128<float> threshold) =>
        Vector128.ConditionalSelect(Vector128.GreaterThan(pre, threshold) & Vector128.GreaterThan(pre, Vector128<float>.Zero), pre, Vector128<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonZeroMask(Vector128<float> v) => (~Vector128.Equals(v, Vector128<float>.Zero)).ExtractMostSignificantBits() & 0xFu;
}

/// <summary>Scalar path: the same kernels with one-float "vectors".</summary>
internal readonly unsafe struct SimdScalar : ISimdOps<float>
{
    public static int Width => 1;

    public static float Zero => 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(float* p) => *p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadBf16(ushort* p) => BFloat16.ToSingle(*p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadBf16Low(uint* p) => BitConverter.UInt32BitsToSingle(*p << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float LoadBf16High(uint* p) => BitConverter.UInt32BitsToSingle(*p & 0xFFFF0000u);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, float v) => *p = v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Broadcast(float x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float a, float b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float JumpReLU(float pre, float threshold) => pre > threshold && pre > 0f ? pre : 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NonZeroMask(float v) => v != 0f ? 1u : 0u;
}
