using System.Numerics.Tensors;

namespace GemmaScope.Onnx.Runtime;

/// <summary>Per-token next-token cross-entropy from logits.</summary>
internal static class CrossEntropy
{
    // loss[t] = logsumexp(logits[t, :]) − logits[t, ids[t+1]], for t = 0 .. n−2 (the last token has no target).
    // logsumexp(z) = m + log Σ exp(z − m) with m = max z, so exp never overflows. TensorPrimitives vectorises each pass.
    public static void PerToken(ReadOnlySpan<float> logits, int vocab, ReadOnlySpan<int> ids, Span<float> loss, Span<float> scratch)
    {
        int n = ids.Length;
        if (loss.Length != Math.Max(0, n - 1) || logits.Length < n * vocab || scratch.Length < vocab)
        {
            throw new ArgumentException($"Cross-entropy buffers: {n} tokens, vocab {vocab}, logits {logits.Length}, loss {loss.Length}, scratch {scratch.Length}.");
        }

        for (int t = 0; t + 1 < n; t++)
        {
            var row = logits.Slice(t * vocab, vocab);
            float max = TensorPrimitives.Max(row);
            TensorPrimitives.Subtract(row, max, scratch[..vocab]);
            TensorPrimitives.Exp(scratch[..vocab], scratch[..vocab]);
            double lse = max + Math.Log(TensorPrimitives.Sum<float>(scratch[..vocab]));
            int target = ids[t + 1];
            if ((uint)target >= (uint)vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {target} at position {t + 1} is outside the vocabulary of {vocab}.");
            }

            loss[t] = (float)(lse - row[target]);
        }
    }
}
