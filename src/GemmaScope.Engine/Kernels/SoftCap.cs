using System.Runtime.Intrinsics;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Gemma 2's soft-cap, element-wise: y = tanh(x / c) · c, in Hugging Face's float32 order (divide, tanh, multiply), tanh
/// from <see cref="VectorMath"/> (float64, rounded once). Final logits use c = 30, attention logits c = 50.
/// In place. Each element depends on its own input only (the tail goes through the same vector function).
/// </summary>
internal static unsafe class SoftCap
{
    /// <summary>Caps <paramref name="x"/> in place at ±<paramref name="cap"/>.</summary>
    public static void Apply(Span<float> x, float cap)
    {
        if (!(cap > 0) || float.IsInfinity(cap))
        {
            throw new ArgumentOutOfRangeException(nameof(cap), cap, "Soft-cap must be positive and finite.");
        }

        fixed (float* p = x)
        {
            Apply(p, x.Length, cap);
        }
    }

    /// <summary>Pointer form for the attention kernel's score rows.</summary>
    internal static void Apply(float* p, int n, float cap)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var c = Vector512.Create(cap);
            for (; i + 16 <= n; i += 16)
            {
                (VectorMath.Tanh(Vector512.Load(p + i) / c) * c).Store(p + i);
            }

            if (i < n)
            {
                var t = stackalloc float[16];
                new Span<float>(t, 16).Clear();
                new ReadOnlySpan<float>(p + i, n - i).CopyTo(new Span<float>(t, 16));
                (VectorMath.Tanh(Vector512.Load(t) / c) * c).Store(t);
                new ReadOnlySpan<float>(t, n - i).CopyTo(new Span<float>(p + i, n - i));
            }

            return;
        }

        if (Vector256.IsHardwareAccelerated)
        {
            var c = Vector256.Create(cap);
            for (; i + 8 <= n; i += 8)
            {
                (VectorMath.Tanh(Vector256.Load(p + i) / c) * c).Store(p + i);
            }

            if (i < n)
            {
                var t = stackalloc float[8];
                new Span<float>(t, 8).Clear();
                new ReadOnlySpan<float>(p + i, n - i).CopyTo(new Span<float>(t, 8));
                (VectorMath.Tanh(Vector256.Load(t) / c) * c).Store(t);
                new ReadOnlySpan<float>(t, n - i).CopyTo(new Span<float>(p + i, n - i));
            }

            return;
        }

        for (; i < n; i++)
        {
            p[i] = VectorMath.Tanh(p[i] / cap) * cap;
        }
    }
}
