using System.Runtime.Intrinsics;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Applies rotary position embeddings, Hugging Face's rotate-half convention, to every head of every row:
///   for i &lt; d/2:  y[i]       = x[i]·cos_i       + (−x[i + d/2])·sin_i
///                   y[i + d/2] = x[i + d/2]·cos_i + x[i]·sin_i
/// (<c>q * cos + rotate_half(q) * sin</c> with rotate_half(x) = cat(−x₂, x₁)); three float32 roundings per element,
/// products first, as PyTorch's separate mul and add (no fused multiply-add). cos/sin rows come from
/// <see cref="RopeTable.Fill"/>, one row per token.
/// </summary>
internal static unsafe class Rope
{
    /// <summary>
    /// Rotates [tokens, heads × headDim] <paramref name="x"/> into <paramref name="y"/> (may be the same span).
    /// <paramref name="cos"/>/<paramref name="sin"/> are [tokens, headDim / 2].
    /// </summary>
    public static void Apply(ReadOnlySpan<float> x, int tokens, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, Span<float> y)
    {
        int half = headDim / 2;
        long size = (long)tokens * heads * headDim;
        if (headDim <= 0 || headDim % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "RoPE: head_dim must be positive and even.");
        }

        if (x.Length != size || y.Length != size)
        {
            throw new ArgumentException($"RoPE: x and y need {size} values ({tokens} × {heads} × {headDim}), got {x.Length} and {y.Length}.");
        }

        if (cos.Length != (long)tokens * half || sin.Length != (long)tokens * half)
        {
            throw new ArgumentException($"RoPE: cos/sin need {(long)tokens * half} values ({tokens} × {half}), got {cos.Length} and {sin.Length}.");
        }

        fixed (float* px = x, py = y, pc = cos, ps = sin)
        {
            for (int t = 0; t < tokens; t++)
            {
                float* c = pc + ((long)t * half);
                float* s = ps + ((long)t * half);
                for (int h = 0; h < heads; h++)
                {
                    long o = (((long)t * heads) + h) * headDim;
                    Head(px + o, py + o, c, s, half);
                }
            }
        }
    }

    private static void Head(float* x, float* y, float* c, float* s, int half)
    {
        float* x2 = x + half;
        float* y2 = y + half;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= half; i += 16)
            {
                var a = Vector512.Load(x + i);
                var b = Vector512.Load(x2 + i);
                var vc = Vector512.Load(c + i);
                var vs = Vector512.Load(s + i);
                var lo = (a * vc) + (-b * vs);
                var hi = (b * vc) + (a * vs);
                lo.Store(y + i);
                hi.Store(y2 + i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= half; i += 8)
            {
                var a = Vector256.Load(x + i);
                var b = Vector256.Load(x2 + i);
                var vc = Vector256.Load(c + i);
                var vs = Vector256.Load(s + i);
                var lo = (a * vc) + (-b * vs);
                var hi = (b * vc) + (a * vs);
                lo.Store(y + i);
                hi.Store(y2 + i);
            }
        }

        for (; i < half; i++)
        {
            float a = x[i];
            float b = x2[i];
            y[i] = (a * c[i]) + (-b * s[i]);
            y2[i] = (b * c[i]) + (a * s[i]);
        }
    }
}
