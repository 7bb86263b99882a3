using System.Runtime.Intrinsics;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Gemma's gated MLP activation, element-wise: y = gelu_tanh(g) · u, with PyTorch's gelu(approximate="tanh") in float32:
///   x³ = x·x·x,  inner = β·(x + κ·x³),  gelu = (0.5·x)·(1 + tanh(inner)),
///   β = (float)(√2 · 2/√π · 0.5) = (float)√(2/π),  κ = 0.044715f
/// in that order (PyTorch's GeluKernel), with tanh from <see cref="VectorMath"/> (float64, rounded once), then · u
/// (Hugging Face: <c>act_fn(gate_proj(x)) * up_proj(x)</c>). Each element depends on its own inputs only.
/// </summary>
internal static unsafe class GeGlu
{
    private const float Beta = (float)(1.4142135623730951 * 1.1283791670955126 * 0.5);
    private const float Kappa = 0.044715f;

    /// <summary>y = gelu_tanh(gate) · up over equal-length spans; <paramref name="y"/> may be <paramref name="gate"/> or <paramref name="up"/>.</summary>
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        if (gate.Length != y.Length || up.Length != y.Length)
        {
            throw new ArgumentException($"GeGLU: gate, up and y must have the same length, got {gate.Length}, {up.Length} and {y.Length}.");
        }

        int n = y.Length;
        fixed (float* pg = gate, pu = up, py = y)
        {
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 16 <= n; i += 16)
                {
                    (Gelu(Vector512.Load(pg + i)) * Vector512.Load(pu + i)).Store(py + i);
                }

                if (i < n)
                {
                    // The tail goes through the same vector function, so a column's result never depends on n.
                    var g = stackalloc float[16];
                    var u = stackalloc float[16];
                    new Span<float>(g, 16).Clear();
                    new Span<float>(u, 16).Clear();
                    new ReadOnlySpan<float>(pg + i, n - i).CopyTo(new Span<float>(g, 16));
                    new ReadOnlySpan<float>(pu + i, n - i).CopyTo(new Span<float>(u, 16));
                    (Gelu(Vector512.Load(g)) * Vector512.Load(u)).Store(g);
                    new ReadOnlySpan<float>(g, n - i).CopyTo(new Span<float>(py + i, n - i));
                }

                return;
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 8 <= n; i += 8)
                {
                    (Gelu(Vector256.Load(pg + i)) * Vector256.Load(pu + i)).Store(py + i);
                }

                if (i < n)
                {
                    var g = stackalloc float[8];
                    var u = stackalloc float[8];
                    new Span<float>(g, 8).Clear();
                    new Span<float>(u, 8).Clear();
                    new ReadOnlySpan<float>(pg + i, n - i).CopyTo(new Span<float>(g, 8));
                    new ReadOnlySpan<float>(pu + i, n - i).CopyTo(new Span<float>(u, 8));
                    (Gelu(Vector256.Load(g)) * Vector256.Load(u)).Store(g);
                    new ReadOnlySpan<float>(g, n - i).CopyTo(new Span<float>(py + i, n - i));
                }

                return;
            }

            for (; i < n; i++)
            {
                float x = pg[i];
                float inner = Beta * (x + (Kappa * (x * x * x)));
                py[i] = 0.5f * x * (1f + VectorMath.Tanh(inner)) * pu[i];
            }
        }
    }

    private static Vector512<float> Gelu(Vector512<float> x)
    {
        var inner = Vector512.Create(Beta) * (x + (Vector512.Create(Kappa) * (x * x * x)));
        return Vector512.Create(0.5f) * x * (Vector512<float>.One + VectorMath.Tanh(inner));
    }

    private static Vector256<float> Gelu(Vector256<float> x)
    {
        var inner = Vector256.Create(Beta) * (x + (Vector256.Create(Kappa) * (x * x * x)));
        return Vector256.Create(0.5f) * x * (Vector256<float>.One + VectorMath.Tanh(inner));
    }
}
