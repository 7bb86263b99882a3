namespace GemmaScope.Engine;

/// <summary>
/// The two float32 steps of RMSNorm after its scale, for when a hook edited <c>hook_scale</c> or <c>hook_normalized</c>:
///   normalized = x · (1 / scale),   y = normalized · g   (g = 1 + w)
/// the same operations, in the same order, as <see cref="Kernels.RmsNorm"/> (scalar: only edited calls run this).
/// </summary>
internal static class NormSteps
{
    public static void Normalize(float[] x, int rows, int d, float[] scale, float[] normalized)
    {
        for (int r = 0; r < rows; r++)
        {
            float inv = 1f / scale[r];
            for (int i = r * d; i < (r + 1) * d; i++)
            {
                normalized[i] = x[i] * inv;
            }
        }
    }

    public static void Gain(float[] normalized, int rows, int d, float[] gain, float[] y)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < d; i++)
            {
                y[(r * d) + i] = normalized[(r * d) + i] * gain[i];
            }
        }
    }
}
