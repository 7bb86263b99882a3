namespace GemmaScope.Engine;

/// <summary>
/// The activation buffers of one Forward call, sized for its rows and reused by later calls (pooled by the engine), so
/// that a call allocates nothing per layer: after warm-up, a call of no more rows than before allocates only its
/// layout and its logits. Buffers grow and never shrink; <see cref="GemmaEngine"/> keeps a few.
/// </summary>
internal sealed class Scratch
{
    public float[] X = [], H = [], N = [], Scale = [], Q = [], K = [], V = [], Z = [], A = [], Gate = [], Up = [];
    public float[][] Cos = [], Sin = [];

    // only when hooks want them: packed scores/patterns, one sequence's kernel outputs, a copy to detect edits
    public float[] Scores = [], Pattern = [], SeqScores = [], SeqPattern = [], Copy = [];

    /// <summary>Floats held (for the pool's bound).</summary>
    public long Floats => (long)X.Length + H.Length + N.Length + Scale.Length + Q.Length + K.Length + V.Length + Z.Length
        + A.Length + Gate.Length + Up.Length + Scores.Length + Pattern.Length + SeqScores.Length + SeqPattern.Length + Copy.Length;

    public static void Ensure(ref float[] buffer, long length)
    {
        if (buffer.Length < length)
        {
            if (length > Array.MaxLength)
            {
                throw new InvalidOperationException($"A forward buffer of {length} floats exceeds one array: split the call into fewer rows.");
            }

            buffer = new float[length];
        }
    }

    public void Prepare(int rows, int d, int qd, int kvd, int ff, int ropeKinds, int half)
    {
        Ensure(ref X, (long)rows * d);
        Ensure(ref H, (long)rows * d);
        Ensure(ref N, (long)rows * d);
        Ensure(ref Scale, rows);
        Ensure(ref Q, (long)rows * qd);
        Ensure(ref K, (long)rows * kvd);
        Ensure(ref V, (long)rows * kvd);
        Ensure(ref Z, (long)rows * qd);
        Ensure(ref A, (long)rows * d);
        Ensure(ref Gate, (long)rows * ff);
        Ensure(ref Up, (long)rows * ff);
        if (Cos.Length < ropeKinds)
        {
            Array.Resize(ref Cos, ropeKinds);
            Array.Resize(ref Sin, ropeKinds);
        }

        for (int i = 0; i < ropeKinds; i++)
        {
            Cos[i] ??= [];
            Sin[i] ??= [];
            Ensure(ref Cos[i], (long)rows * half);
            Ensure(ref Sin[i], (long)rows * half);
        }
    }
}
