using System.Runtime.InteropServices;
using GemmaScope.Formats;
using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// A random [out, in] weight matrix in native memory (as a mapped checkpoint would hold it), in f32, bf16 or f16, with
/// the float64 values the stored elements mean. Weights uniform in ±[0.05, 1) / √in with random sign (no zeros).
/// </summary>
internal sealed unsafe class MatMulTestData : IDisposable
{
    private void* _memory;

    public MatMulTestData(int rows, int cols, TensorDType dtype, int seed)
    {
        var rng = new Random(seed);
        int size = dtype == TensorDType.Float32 ? 4 : 2;
        // One spare element so the matrix can start 2 or 4 bytes past a 64-byte boundary, as safetensors data does.
        _memory = NativeMemory.AlignedAlloc((nuint)(((long)rows * cols * size) + 64), 64);
        byte* start = (byte*)_memory + size;
        Stored = new double[(long)rows * cols];
        float scale = 1f / MathF.Sqrt(cols);
        for (long i = 0; i < Stored.Length; i++)
        {
            float v = NonZero(rng) * scale;
            switch (dtype)
            {
                case TensorDType.Float32:
                    ((float*)start)[i] = v;
                    Stored[i] = v;
                    break;
                case TensorDType.BFloat16:
                    ushort b = BFloat16.FromSingle(v);
                    ((ushort*)start)[i] = b;
                    Stored[i] = BFloat16.ToSingle(b);
                    break;
                default:
                    Half h = (Half)v;
                    ((Half*)start)[i] = h;
                    Stored[i] = (double)h;
                    break;
            }
        }

        Matrix = WeightMatrix.Create((nint)start, rows, cols, dtype);
    }

    public WeightMatrix Matrix { get; }

    /// <summary>The stored weights' exact values, [out, in].</summary>
    public double[] Stored { get; }

    /// <summary>Uniform in ±[0.05, 1): never zero, so every product contributes.</summary>
    public static float NonZero(Random rng)
    {
        float m = 0.05f + (0.95f * (float)rng.NextDouble());
        return rng.Next(2) == 0 ? m : -m;
    }

    public static float[] Activations(int seed, int count)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[i] = NonZero(rng) * 2f;
        }

        return x;
    }

    /// <summary>Asserts y against Σ x·W in float64, within <paramref name="rel"/> × Σ|x·W| per element.</summary>
    public void AssertMatches(float[] x, int tokens, float[] y, double rel)
    {
        int rows = Matrix.Rows, cols = Matrix.Cols;
        for (int t = 0; t < tokens; t++)
        {
            for (int o = 0; o < rows; o++)
            {
                double s = 0, mag = 0;
                for (int i = 0; i < cols; i++)
                {
                    double p = x[((long)t * cols) + i] * Stored[((long)o * cols) + i];
                    s += p;
                    mag += Math.Abs(p);
                }

                float got = y[((long)t * rows) + o];
                Assert.False(float.IsNaN(got), $"y[{t}, {o}] is NaN (not written)");
                double err = Math.Abs(got - s);
                Assert.True(err <= rel * mag, $"y[{t}, {o}] = {got}, float64 {s}, error {err:E3} > {rel:E1} × Σ|x·W| = {rel * mag:E3}");
            }
        }
    }

    public void Dispose()
    {
        if (_memory != null)
        {
            NativeMemory.AlignedFree(_memory);
            _memory = null;
        }
    }
}
