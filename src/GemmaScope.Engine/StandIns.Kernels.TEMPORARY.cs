// TEMPORARY STAND-INS (forward engineer) for the model kernels that "ops" builds in Kernels/ (RMSNorm, RoPE, GeGLU,
// soft-cap, embedding). Plain scalar loops, deterministic, accurate; replaced by the SIMD kernels when they land.
namespace GemmaScope.Engine;

internal static class StandInKernels
{
    /// <summary>scale[r] = √(mean(x[r]²) + ε) in float32 (the sum of squares in float64).</summary>
    public static void RmsScale(ReadOnlySpan<float> x, int rows, int d, float eps, Span<float> scale)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            double ss = 0;
            for (int i = 0; i < d; i++)
            {
                ss += (double)xr[i] * xr[i];
            }

            scale[r] = MathF.Sqrt((float)(ss / d) + eps);
        }
    }

    /// <summary>y[r, i] = (x[r, i] · (1 / scale[r])) · gain[i]; gain null: no gain (the normalized vector).</summary>
    public static void Normalize(ReadOnlySpan<float> x, int rows, int d, ReadOnlySpan<float> scale, float[]? gain, Span<float> y)
    {
        for (int r = 0; r < rows; r++)
        {
            float inv = 1f / scale[r];
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            if (gain is null)
            {
                for (int i = 0; i < d; i++)
                {
                    yr[i] = xr[i] * inv;
                }
            }
            else
            {
                for (int i = 0; i < d; i++)
                {
                    yr[i] = (xr[i] * inv) * gain[i];
                }
            }
        }
    }

    /// <summary>y[r, i] = x[r, i] · gain[i] (the gain applied to an already normalized vector).</summary>
    public static void Gain(ReadOnlySpan<float> x, int rows, int d, float[] gain, Span<float> y)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            for (int i = 0; i < d; i++)
            {
                yr[i] = xr[i] * gain[i];
            }
        }
    }

    /// <summary>Rotate-half RoPE in place: (a, b) = (x[j], x[j + half]) → (a·cos − b·sin, b·cos + a·sin) per head.</summary>
    public static void Rope(Span<float> x, int rows, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        for (int r = 0; r < rows; r++)
        {
            var c = cos.Slice(r * half, half);
            var s = sin.Slice(r * half, half);
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice(((r * heads) + h) * headDim, headDim);
                for (int j = 0; j < half; j++)
                {
                    float a = v[j], b = v[j + half];
                    v[j] = (a * c[j]) - (b * s[j]);
                    v[j + half] = (b * c[j]) + (a * s[j]);
                }
            }
        }
    }

    /// <summary>gate[i] = gelu_tanh(gate[i]) · up[i], gelu_tanh(g) = ½ g (1 + tanh(√(2/π) (g + 0.044715 g³))).</summary>
    public static void GeGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        double k = Math.Sqrt(2 / Math.PI);
        for (int i = 0; i < gate.Length; i++)
        {
            double g = gate[i];
            gate[i] = (float)(0.5 * g * (1 + Math.Tanh(k * (g + (0.044715 * g * g * g)))) * up[i]);
        }
    }

    /// <summary>x = tanh(x / cap) · cap.</summary>
    public static void SoftCap(Span<float> x, float cap)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(Math.Tanh(x[i] / (double)cap) * cap);
        }
    }
}
