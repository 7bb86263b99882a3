namespace GemmaScope;

/// <summary>The five tensors of a JumpReLU SAE, for <see cref="JumpReLUSae.GetFloat32Memory(SaeTensor)"/>.</summary>
public enum SaeTensor
{
    /// <summary>W_enc, row-major [d_in, d_sae].</summary>
    EncoderWeights,

    /// <summary>b_enc [d_sae].</summary>
    EncoderBias,

    /// <summary>threshold [d_sae].</summary>
    Threshold,

    /// <summary>W_dec, row-major [d_sae, d_in].</summary>
    DecoderWeights,

    /// <summary>b_dec [d_in].</summary>
    DecoderBias,
}
