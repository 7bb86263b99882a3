using GemmaScope.Kernels;

namespace GemmaScope;

/// <summary>The hook from the public API into the exact screened encode (<see cref="SaeLoadOptions.Screening"/>).</summary>
public unsafe partial class JumpReLUSae
{
    private ScreenedWeights? _screen;

    /// <summary>Whether this SAE was loaded with <see cref="SaeLoadOptions.Screening"/>.</summary>
    public bool Screening => _screen is not null;

    /// <summary>Bytes of the screening copies (int8 W_enc and transposed fp32 W_enc; 0 without screening).</summary>
    public long ScreeningBytes => _screen?.Bytes ?? 0;

    internal ScreenedWeights? Screen => _screen;

    // Screening copies are built from the finished weights, so after construction; the caller frees them on failure.
    private JumpReLUSae WithScreening(SaeLoadOptions options)
    {
        if (options.Screening)
        {
            _screen = ScreenedWeights.Build(_w, MaxDegreeOfParallelism);
            _owned.Add(_screen);
        }

        return this;
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
