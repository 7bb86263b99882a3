using System.Numerics.Tensors;

namespace GemmaScope.Onnx;

/// <summary>Next-token choice from one row of logits.</summary>
internal static class Sampling
{
    public static int ArgMax(ReadOnlySpan<float> logits) => TensorPrimitives.IndexOfMax(logits);

    // p = softmax(logits / T); nucleus: keep the most likely tokens until their mass reaches topP, renormalise, draw one.
    // probs, keys and order are caller-owned scratch of the vocabulary's length, reused across steps.
    public static int Sample(ReadOnlySpan<float> logits, float temperature, float topP, Random rng, float[] probs, float[] keys, int[] order)
    {
        TensorPrimitives.Divide(logits, temperature, probs);
        TensorPrimitives.SoftMax(probs, probs);
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        TensorPrimitives.Negate(probs, keys);
        Array.Sort(keys, order); // descending probability
        double mass = 0;
        int kept = 0;
        while (kept < order.Length && (kept == 0 || mass < topP))
        {
            mass += probs[order[kept++]];
        }

        double u = rng.NextDouble() * mass;
        double acc = 0;
        for (int i = 0; i < kept; i++)
        {
            acc += probs[order[i]];
            if (u < acc)
            {
                return order[i];
            }
        }

        return order[kept - 1];
    }
}
