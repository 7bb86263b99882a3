using System.Runtime.Intrinsics;
using GemmaScope.Formats;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Gemma's RMSNorm, per row of width n:
///   ms = mean(x²)            (sum of squares accumulated in float64, the mean rounded to float32)
///   s  = √(ms + ε)           (float32: <c>ln*.hook_scale</c>)
///   r  = 1 / s               (float32, as torch.rsqrt on the CPU: 1 / sqrt)
///   x̂  = x · r               (float32: <c>ln*.hook_normalized</c>)
///   y  = x̂ · g, g = 1 + w    (float32; g from <see cref="Gain"/>)
/// Hugging Face Gemma2RMSNorm / Gemma3RMSNorm compute <c>x.float() * rsqrt(x.pow(2).mean(-1) + eps) * (1.0 + w.float())</c>;
/// the float64 accumulation only removes summation-order error from the mean. A row's result depends on that row alone.
/// </summary>
internal static unsafe class RmsNorm
{
    /// <summary>g = 1 + w in float32 (Hugging Face adds 1.0 to the float32-widened weight), once at load.</summary>
    public static float[] Gain(ReadOnlySpan<byte> weight, TensorDType dtype, int width, string tensorName)
    {
        var g = FloatWiden.ToArray(weight, dtype, width, tensorName);
        for (int i = 0; i < g.Length; i++)
        {
            g[i] = 1f + g[i];
        }

        return g;
    }

    /// <summary>
    /// Normalizes <paramref name="rows"/> rows of <paramref name="width"/>. <paramref name="y"/> may be the same span as
    /// <paramref name="x"/> (in place). <paramref name="scale"/> ([rows]) and <paramref name="normalized"/> ([rows, width])
    /// are optional outputs: pass empty spans to skip them.
    /// </summary>
    public static void Forward(
        ReadOnlySpan<float> x,
        int rows,
        int width,
        ReadOnlySpan<float> gain,
        float eps,
        Span<float> y,
        Span<float> scale = default,
        Span<float> normalized = default)
    {
        long size = (long)rows * width;
        Check(x.Length == size, "x", size, x.Length);
        Check(y.Length == size, "y", size, y.Length);
        Check(gain.Length == width, "gain", width, gain.Length);
        Check(scale.IsEmpty || scale.Length == rows, "scale", rows, scale.Length);
        Check(normalized.IsEmpty || normalized.Length == size, "normalized", size, normalized.Length);

        fixed (float* px = x, py = y, pg = gain, ps = scale, pn = normalized)
        {
            for (int r = 0; r < rows; r++)
            {
                long o = (long)r * width;
                float ms = (float)(SumOfSquares(px + o, width) / width);
                float s = MathF.Sqrt(ms + eps);
                float inv = 1f / s;
                if (ps != null)
                {
                    ps[r] = s;
                }

                Apply(px + o, width, inv, pg, py + o, pn == null ? null : pn + o);
            }
        }
    }

    private static double SumOfSquares(float* x, int n)
    {
        int i = 0;
        double sum;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var a0 = Vector512<double>.Zero;
            var a1 = Vector512<double>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(x + i));
                a0 = Vector512.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector512.FusedMultiplyAdd(hi, hi, a1);
            }

            sum = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var a0 = Vector256<double>.Zero;
            var a1 = Vector256<double>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                a0 = Vector256.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector256.FusedMultiplyAdd(hi, hi, a1);
            }

            sum = Vector256.Sum(a0 + a1);
        }
        else
        {
            sum = 0;
        }

        for (; i < n; i++)
        {
            double v = x[i];
            sum += v * v;
        }

        return sum;
    }

    // x̂ = x · inv, y = x̂ · g, two float32 roundings as in Hugging Face (no fused multiply).
    private static void Apply(float* x, int n, float inv, float* g, float* y, float* normalized)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vi = Vector512.Create(inv);
            for (; i + 16 <= n; i += 16)
            {
                var h = Vector512.Load(x + i) * vi;
                if (normalized != null)
                {
                    h.Store(normalized + i);
                }

                (h * Vector512.Load(g + i)).Store(y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vi = Vector256.Create(inv);
            for (; i + 8 <= n; i += 8)
            {
                var h = Vector256.Load(x + i) * vi;
                if (normalized != null)
                {
                    h.Store(normalized + i);
                }

                (h * Vector256.Load(g + i)).Store(y + i);
            }
        }

        for (; i < n; i++)
        {
            float h = x[i] * inv;
            if (normalized != null)
            {
                normalized[i] = h;
            }

            y[i] = h * g[i];
        }
    }

    private static void Check(bool ok, string what, long expected, long actual)
    {
        if (!ok)
        {
            throw new ArgumentException($"RMSNorm: {what} has {actual} values, expected {expected}.", what);
        }
    }
}
