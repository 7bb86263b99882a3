namespace GemmaScope.TestSupport;

/// <summary>Generation on the float64 reference, for checking a model's generation loop.</summary>
public static class ReferenceGeneration
{
    /// <summary>
    /// The <paramref name="steps"/> tokens greedy decoding appends to <paramref name="prompt"/>: each the argmax of the last
    /// row of a full forward over the sequence so far (no cache), the lowest id on a tie.
    /// </summary>
    public static int[] Greedy(this Gemma2Reference reference, int[] prompt, int steps)
    {
        var ids = prompt.ToList();
        for (int s = 0; s < steps; s++)
        {
            var logits = reference.Forward([.. ids]).Logits;
            int row = (ids.Count - 1) * reference.Vocab, best = 0;
            for (int v = 1; v < reference.Vocab; v++)
            {
                best = logits[row + v] > logits[row + best] ? v : best;
            }

            ids.Add(best);
        }

        return [.. ids.Skip(prompt.Length)];
    }
}
