namespace GemmaScope.Hf;

/// <summary>
/// The catalog's kind of a Gemma Scope release: residual, attention, MLP, transcoder or embedding, as
/// <c>gemmascope list --site res|att|mlp|transcoder|embedding</c> filters. A classification only: the hook point an SAE
/// reads is <see cref="GemmaScopeSae.Hook"/> (and a transcoder writes <see cref="GemmaScopeSae.OutputHook"/>), Core's
/// <see cref="HookPoint"/>; which kind leads to which hook point (for transcoders it differs between Gemma Scope and
/// Gemma Scope 2) is decided there, not from this value.
/// </summary>
public enum SaeSite
{
    /// <summary>Residual-stream SAEs (the <c>-res</c> releases); they read <see cref="HookKind.ResidPost"/>.</summary>
    ResidualStream,

    /// <summary>Attention SAEs (the <c>-att</c> releases); they read the concatenated per-head outputs before <c>o_proj</c>, <see cref="HookKind.AttnZ"/>.</summary>
    AttentionOutput,

    /// <summary>MLP SAEs (the <c>-mlp</c> releases); they read the MLP output after <c>post_feedforward_layernorm</c>, <see cref="HookKind.MlpOut"/>.</summary>
    MlpOutput,

    /// <summary>Embedding SAEs (only in the <c>-pt-res</c> releases); they read <see cref="HookKind.Embed"/>.</summary>
    Embedding,

    /// <summary>
    /// Transcoders: they read the MLP's input and write its output (<see cref="GemmaScopeSae.OutputHook"/>). Gemma Scope's read
    /// <see cref="HookKind.Ln2Normalized"/> (the pre-feedforward norm without its gain, which was folded into the transcoder);
    /// Gemma Scope 2's read <see cref="HookKind.MlpIn"/> (with the gain).
    /// </summary>
    Transcoder,
}
