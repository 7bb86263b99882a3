namespace GemmaScope;

/// <summary>
/// A JumpReLU transcoder: an SAE (<see cref="JumpReLUSae"/>) that reads one site (the MLP's input) and predicts another
/// (the MLP's output), as in SAELens.
/// <para>pre = x·W_enc + b_enc; f = pre where pre &gt; threshold and pre &gt; 0, else 0;
/// y = f·W_dec + b_dec (+ x·W_skip for Gemma Scope 2's affine transcoders).</para>
/// <para>
/// Everything is inherited: encoding (dense, sparse, buffers, <see cref="ActivationBatch"/>, tensors, screening),
/// decoding (<see cref="JumpReLUSae.Decode(ReadOnlySpan{float}, Span{float})"/> is the decoder alone), and
/// <see cref="JumpReLUSae.Reconstruct(ReadOnlySpan{float}, Span{float})"/>, which is the prediction y including x·W_skip.
/// Decode-side widths are <see cref="JumpReLUSae.OutputSize"/>. <see cref="JumpReLUSae.ReconstructionError"/> and
/// <see cref="JumpReLUSae.Save"/> refuse a transcoder. Immutable once loaded and safe to use from many threads.
/// </para>
/// </summary>
public sealed unsafe class JumpReLUTranscoder : JumpReLUSae
{
    internal JumpReLUTranscoder(in Parts parts, SaeLoadOptions options)
        : base(parts, options)
    {
    }

    /// <summary>True for affine (skip) transcoders, whose output adds x·W_skip.</summary>
    public bool HasSkipConnection => Skip != null;

    /// <summary>Hook name the transcoder reads (e.g. <c>blocks.5.ln2.hook_normalized</c> or <c>blocks.5.hook_mlp_in</c>), if known: <see cref="SaeConfig.HookName"/>.</summary>
    public string? InputHookName => Config.HookName;

    /// <summary>Hook name the transcoder predicts (e.g. <c>blocks.5.hook_mlp_out</c>), if known: <see cref="SaeConfig.OutputHookName"/>.</summary>
    public string? OutputHookName => Config.OutputHookName;

    /// <summary>
    /// Loads a transcoder: Gemma Scope's <c>params.npz</c> (W_enc, W_dec, b_enc, b_dec, threshold; sites from
    /// <see cref="SaeLoadOptions.Config"/>: <see cref="SaeConfig.HookName"/> and <see cref="SaeConfig.OutputHookName"/>) or Gemma Scope 2's
    /// <c>params.safetensors</c> with its <c>config.json</c> (w_enc, w_dec, b_enc, b_dec, threshold, optional affine_skip_connection), or a folder holding one.
    /// </summary>
    /// <param name="path">File or folder.</param>
    /// <param name="options">Precision, validation, threading, encoder packing, screening and sites; null for defaults. <see cref="SaeLoadOptions.InputScale"/> must be 1.</param>
    /// <exception cref="Formats.SaeFormatException">Malformed file, shapes that disagree, or a config.json that says this is an SAE.</exception>
    public static new JumpReLUTranscoder Load(string path, SaeLoadOptions? options = null) =>
        (JumpReLUTranscoder)LoadKind(path, options, transcoder: true);

    /// <summary>The transcoder's prediction of its output site: f(x)·W_dec + b_dec (+ x·W_skip).</summary>
    /// <param name="activations">tokens × InputSize floats, read at <see cref="InputHookName"/>.</param>
    /// <param name="output">tokens × OutputSize floats, overwritten.</param>
    [Obsolete("Use Reconstruct, the name the SAE family shares; this forwards to it.")]
    public void Forward(ReadOnlySpan<float> activations, Span<float> output) => Reconstruct(activations, output);

    /// <summary>The full output for a batch, as a new array of tokens × OutputSize floats.</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    [Obsolete("Use Reconstruct, the name the SAE family shares; this forwards to it.")]
    public float[] Forward(ReadOnlySpan<float> activations) => Reconstruct(activations);

    /// <inheritdoc/>
    public override string ToString() =>
        $"JumpReLUTranscoder({InputHookName ?? "?"} → {OutputHookName ?? "?"}, d_in {InputSize}, d_sae {FeatureCount}, d_out {OutputSize}{(HasSkipConnection ? ", skip" : "")})";
}
