using GemmaScope.Kernels;

namespace GemmaScope;

/// <summary>The hook from the public API into the exact screened encode (<see cref="SaeLoadOptions.Screening"/>).</summary>
public sealed unsafe partial class JumpReLUSae
{
    private ScreenedWeights? _screen;

    /// <summary>Whether this SAE was loaded with <see cref="SaeLoadOptions.Screening"/>.</summary>
    public bool Screening => _screen is not null;

    /// <summary>Bytes of the screening copies (int8 W_enc and transposed fp32 W_enc; 0 without screening).</summary>
    public long ScreeningBytes => _screen?.Bytes ?? 0;

    internal ScreenedWeights? Screen => _screen;

    private static JumpReLUSae WithScreening(JumpReLUSae sae, SaeLoadOptions options)
    {
        if (options.Screening)
        {
            sae._screen = ScreenedWeights.Build(sae._w, sae.MaxDegreeOfParallelism);
            sae._owned.Add(sae._screen);
        }

        return sae;
    }

    private bool TryEncodeScreened(float* x, int tokens, float* f)
    {
        if (_screen is null || tokens == 0 || !ScreenedEncodeKernel.Enabled)
        {
            return false;
        }

        return ScreenedEncodeKernel.Run(_w, _screen, x, tokens, f, MaxDegreeOfParallelism) is not null;
    }

    private SparseFeatureBatch? TryEncodeSparseScreened(float* x, int tokens) =>
        _screen is null || !ScreenedEncodeKernel.Enabled ? null : ScreenedEncodeKernel.EncodeSparse(_w, _screen, x, tokens, MaxDegreeOfParallelism);

    private int TryEncodeSparseTokenScreened(float* x, Span<int> indices, Span<float> values) =>
        _screen is null || !ScreenedEncodeKernel.Enabled ? int.MinValue : ScreenedEncodeKernel.EncodeSparseToken(_w, _screen, x, indices, values, MaxDegreeOfParallelism);
}
