namespace GemmaScope;

[System.Diagnostics.DebuggerDisplay("{ToString(),nq}")]
public partial class JumpReLUSae
{
    /// <summary>
    /// Encodes activations read at a known site to sparse form, after checking that this SAE belongs there: their width
    /// must be <see cref="InputSize"/>, and their hook name must be the SAE's own (<see cref="SaeConfig.HookName"/>)
    /// when both are known.
    /// </summary>
    /// <param name="activations">Captured activations, e.g. <c>run.GetActivations(site)</c>.</param>
    /// <param name="allowOtherSite">Apply the SAE although the activations come from a hook point other than its own (widths must still agree).</param>
    /// <exception cref="ArgumentException">The widths differ, or the hook names differ and <paramref name="allowOtherSite"/> is false; the message names both.</exception>
    public SparseFeatureBatch EncodeSparse(ActivationBatch activations, bool allowOtherSite = false)
    {
        CheckSite(activations, allowOtherSite);
        return EncodeSparse(activations.Span);
    }

    /// <summary>Encodes activations read at a known site densely, [tokens × FeatureCount], after the checks of <see cref="EncodeSparse(ActivationBatch, bool)"/>.</summary>
    /// <param name="activations">Captured activations.</param>
    /// <param name="allowOtherSite">Apply the SAE although the activations come from a hook point other than its own.</param>
    /// <exception cref="ArgumentException">The widths differ, or the hook names differ and <paramref name="allowOtherSite"/> is false.</exception>
    public float[] Encode(ActivationBatch activations, bool allowOtherSite = false)
    {
        CheckSite(activations, allowOtherSite);
        return Encode(activations.Span);
    }

    /// <summary>
    /// The SAE's reconstruction x̂ of activations read at a known site (same tokens and hook name), after the checks of
    /// <see cref="EncodeSparse(ActivationBatch, bool)"/>. For a transcoder, its prediction of the output site, named by
    /// <see cref="SaeConfig.OutputHookName"/>.
    /// </summary>
    /// <param name="activations">Captured activations.</param>
    /// <param name="allowOtherSite">Apply the SAE although the activations come from a hook point other than its own.</param>
    /// <exception cref="ArgumentException">The widths differ, or the hook names differ and <paramref name="allowOtherSite"/> is false.</exception>
    public ActivationBatch Reconstruct(ActivationBatch activations, bool allowOtherSite = false)
    {
        CheckSite(activations, allowOtherSite);
        var xhat = new float[(long)activations.TokenCount * OutputSize];
        Reconstruct(activations.Span, xhat);
        return new ActivationBatch(xhat, OutputSize, this is JumpReLUTranscoder ? Config.OutputHookName : activations.HookName, activations.Tokens);
    }

    private void CheckSite(ActivationBatch activations, bool allowOtherSite)
    {
        ArgumentNullException.ThrowIfNull(activations);
        string own = Config.HookName is null ? "this SAE (no hook name known)" : $"this SAE (trained on {Config.HookName})";
        string where = activations.HookName ?? "an unnamed site";
        if (activations.Width != InputSize)
        {
            throw new ArgumentException(
                $"Activations read at {where} are {activations.Width} wide, but {own} reads {InputSize}-wide activations: it cannot be applied there.",
                nameof(activations));
        }

        if (!allowOtherSite && activations.HookName is not null && Config.HookName is not null &&
            !string.Equals(activations.HookName, Config.HookName, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"Activations read at {activations.HookName}, but {own} reads {Config.HookName}; pass allowOtherSite: true to apply it at {activations.HookName} anyway.",
                nameof(activations));
        }
    }
}
