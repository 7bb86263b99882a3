using System.Runtime.Intrinsics;
using GemmaScope.Formats;

namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Gemma's scaled embedding: y[t, :] = E[id_t, :] · s with s = (float32)√d_model, E the [vocab, d_model] table in
/// f32, bf16 or f16 at a mapped address, rows widened exactly, one float32 multiply per element.
/// Hugging Face: <c>hidden_states * torch.tensor(hidden_size**0.5, dtype=hidden_states.dtype)</c>, the scale rounded to
/// the activation dtype (float32 here) before the multiply (√2304 = 48 exactly; √640 is not).
/// </summary>
internal static unsafe class Embedding
{
    /// <summary>The normalizer √d_model rounded to float32.</summary>
    public static float Normalizer(int dModel) => (float)Math.Sqrt(dModel);

    /// <summary>Gathers and scales the rows of <paramref name="ids"/> into <paramref name="y"/> ([ids.Length, dModel]).</summary>
    /// <param name="table">Address of <c>model.embed_tokens.weight</c> [vocab, dModel], valid for the call.</param>
    /// <param name="dtype">The table's element type.</param>
    /// <param name="vocab">Rows of the table.</param>
    /// <param name="dModel">Columns of the table.</param>
    /// <param name="ids">Token ids, each in [0, vocab).</param>
    /// <param name="y">[ids.Length, dModel] output.</param>
    public static void Gather(nint table, TensorDType dtype, int vocab, int dModel, ReadOnlySpan<int> ids, Span<float> y)
    {
        int size = FloatWiden.ElementSize(dtype);
        if (y.Length != (long)ids.Length * dModel)
        {
            throw new ArgumentException($"Embedding: y needs {(long)ids.Length * dModel} values ({ids.Length} tokens × {dModel}), got {y.Length}.", nameof(y));
        }

        for (int t = 0; t < ids.Length; t++)
        {
            if ((uint)ids[t] >= (uint)vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), ids[t], $"Embedding: token id at row {t} is {ids[t]}, outside the vocabulary [0, {vocab}).");
            }
        }

        float s = Normalizer(dModel);
        fixed (float* py = y)
        {
            for (int t = 0; t < ids.Length; t++)
            {
                byte* row = (byte*)table + ((long)ids[t] * dModel * size);
                float* dst = py + ((long)t * dModel);
                FloatWiden.ToSingle(row, dtype, new Span<float>(dst, dModel));
                Scale(dst, dModel, s);
            }
        }
    }

    private static void Scale(float* p, int n, float s)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.Create(s);
            for (; i + 16 <= n; i += 16)
            {
                (Vector512.Load(p + i) * v).Store(p + i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(s);
            for (; i + 8 <= n; i += 8)
            {
                (Vector256.Load(p + i) * v).Store(p + i);
            }
        }

        for (; i < n; i++)
        {
            p[i] *= s;
        }
    }
}
