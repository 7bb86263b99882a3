namespace GemmaScope.Hf;

/// <summary>Where in Gemma 2 or Gemma 3 a Gemma Scope SAE reads its input.</summary>
public enum SaeSite
{
    /// <summary>The residual stream after block <c>l</c> (TransformerLens <c>blocks.{l}.hook_resid_post</c>).</summary>
    ResidualStream,

    /// <summary>
    /// The per-head attention outputs of block <c>l</c>, concatenated, before <c>o_proj</c>
    /// (TransformerLens <c>blocks.{l}.attn.hook_z</c>, heads × head_dim wide).
    /// </summary>
    AttentionOutput,

    /// <summary>The MLP output of block <c>l</c> after <c>post_feedforward_layernorm</c> (TransformerLens <c>blocks.{l}.hook_mlp_out</c>).</summary>
    MlpOutput,

    /// <summary>The token embedding row (TransformerLens <c>hook_embed</c>); only the <c>-pt-res</c> releases have these.</summary>
    Embedding,

    /// <summary>
    /// A transcoder: reads the MLP's input and writes the MLP's output (<see cref="GemmaScopeSae.OutputHookName"/>,
    /// <c>blocks.{l}.hook_mlp_out</c>). Gemma Scope's read <c>blocks.{l}.ln2.hook_normalized</c> (the pre-feedforward norm
    /// without its gain, which was folded into the transcoder); Gemma Scope 2's read <c>blocks.{l}.hook_mlp_in</c> (with the gain).
    /// </summary>
    Transcoder,
}
