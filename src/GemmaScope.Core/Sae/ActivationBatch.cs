using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;

namespace GemmaScope;

/// <summary>
/// Activations of one sequence at one site, [tokens × width] row-major, with the width and (when known) the hook name and
/// token strings: the storable form of a captured activation (a class, so it can live in a notebook variable or a field,
/// unlike a span). <see cref="JumpReLUSae.EncodeSparse(ActivationBatch, bool)"/> checks its width and hook name against
/// the SAE's. Immutable (the data is copied in and never exposed writable); safe to share between threads.
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class ActivationBatch
{
    private readonly float[] _data;

    /// <summary>Wraps a copy of <paramref name="data"/>, whose length must be a multiple of <paramref name="width"/>.</summary>
    /// <param name="data">tokens × width floats, row-major.</param>
    /// <param name="width">Row width (d_model, or heads × head_dim for attn.hook_z).</param>
    /// <param name="hookName">Where the activations were read, e.g. <c>blocks.20.hook_resid_post</c>; null if unknown.</param>
    /// <param name="tokens">Token strings, one per row; null if unknown.</param>
    /// <exception cref="ArgumentException">The length is not tokens × width, or the token strings are not one per row.</exception>
    public ActivationBatch(ReadOnlySpan<float> data, int width, string? hookName = null, IReadOnlyList<string>? tokens = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (data.Length % width != 0)
        {
            throw new ArgumentException($"{data.Length} floats are not a whole number of rows of width {width}", nameof(data));
        }

        int rows = data.Length / width;
        if (tokens is not null && tokens.Count != rows)
        {
            throw new ArgumentException($"{tokens.Count} token strings for {rows} rows", nameof(tokens));
        }

        _data = data.ToArray();
        Width = width;
        HookName = hookName;
        Tokens = tokens is null ? null : Array.AsReadOnly(tokens.ToArray());
    }

    /// <summary>Number of tokens (rows).</summary>
    public int TokenCount => _data.Length / Width;

    /// <summary>Row width.</summary>
    public int Width { get; }

    /// <summary>The hook point the activations were read at, or null if unknown.</summary>
    public string? HookName { get; }

    /// <summary>Token strings, one per row, or null if unknown.</summary>
    public IReadOnlyList<string>? Tokens { get; }

    /// <summary>All values, [tokens × width] row-major (a view, no copy).</summary>
    public ReadOnlySpan<float> Span => _data;

    /// <summary>The value of token <paramref name="token"/> at position <paramref name="index"/> of its row.</summary>
    public float this[int token, int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)token, (uint)TokenCount, nameof(token));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Width, nameof(index));
            return _data[(token * Width) + index];
        }
    }

    /// <summary>Row <paramref name="token"/> as a new array of <see cref="Width"/> floats.</summary>
    public float[] Row(int token)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)token, (uint)TokenCount, nameof(token));
        return _data.AsSpan(token * Width, Width).ToArray();
    }

    /// <summary>A copy of all values, [tokens × width] row-major.</summary>
    public float[] ToArray() => (float[])_data.Clone();

    /// <summary>A [tokens, width] tensor over a copy of the values.</summary>
    public Tensor<float> ToTensor() => Tensor.Create(ToArray(), [TokenCount, Width]);

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"ActivationBatch({TokenCount} tokens × {Width}{(HookName is null ? "" : " at " + HookName)})");
}
