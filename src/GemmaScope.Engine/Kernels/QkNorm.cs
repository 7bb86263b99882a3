namespace GemmaScope.Engine.Kernels;

/// <summary>
/// Gemma 3's QK-norm: RMSNorm over head_dim of every head of every row, with the (1 + w) gain of
/// <c>self_attn.q_norm.weight</c> / <c>k_norm.weight</c> ([head_dim]), applied to q and k before RoPE:
///   y[t, h, :] = x[t, h, :] / √(mean_d(x[t, h, d]²) + ε) · (1 + w)
/// A [tokens, heads × head_dim] activation is [tokens · heads] rows of head_dim, so this is <see cref="RmsNorm"/> on
/// that view (same roundings as Hugging Face's Gemma3RMSNorm).
/// </summary>
internal static class QkNorm
{
    /// <summary>Normalizes each head of [tokens, heads × headDim] in place-capable fashion (<paramref name="y"/> may be <paramref name="x"/>).</summary>
    public static void Forward(ReadOnlySpan<float> x, int tokens, int heads, int headDim, ReadOnlySpan<float> gain, float eps, Span<float> y) =>
        RmsNorm.Forward(x, checked(tokens * heads), headDim, gain, eps, y);
}
