using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace GemmaScope.Onnx;

/// <summary>Replace the activation at a hook point by an SAE's reconstruction, inside the graph (SAELens's HookedSAETransformer splice).</summary>
/// <param name="Site">Where to splice.</param>
/// <param name="Sae">
/// The SAE; its d_in must equal the site's width, and when it knows its hook point (<see cref="SaeTensors.HookName"/>)
/// that must be <paramref name="Site"/> unless <see cref="AllowOtherSite"/> is set. Both are checked when the run starts.
/// </param>
[DebuggerDisplay("{ToString(),nq}")]
public sealed record SaeSplice(HookPoint Site, SaeTensors Sae)
{
    /// <summary>Splices a loaded SAE; a float32 SAE's memory is bound without copying (see <see cref="SaeTensors.From"/>).</summary>
    /// <param name="site">Where to splice.</param>
    /// <param name="sae">The SAE; keep it undisposed while runs use this splice.</param>
    public SaeSplice(HookPoint site, JumpReLUSae sae)
        : this(site, SaeTensors.From(sae))
    {
    }

    /// <summary>Splices a loaded SAE at its own hook point (<see cref="SaeConfig.HookName"/>).</summary>
    /// <param name="sae">The SAE; keep it undisposed while runs use this splice.</param>
    /// <exception cref="ArgumentException">The SAE has no hook name, or one that is not a Gemma 2 block hook point.</exception>
    public SaeSplice(JumpReLUSae sae)
        : this(HookPoint.Of(sae), sae)
    {
    }

    /// <summary>Splices SAE tensors at their own hook point (<see cref="SaeTensors.HookName"/>).</summary>
    /// <param name="sae">The SAE tensors.</param>
    /// <exception cref="ArgumentException">The tensors carry no hook name, or one that is not a Gemma 2 block hook point.</exception>
    public SaeSplice(SaeTensors sae)
        : this(HookPoint.ForSae(sae?.HookName, sae?.ToString() ?? nameof(SaeTensors)), sae!)
    {
    }

    /// <summary>Add the SAE's error x − x̂ back (x̂ computed without clamps), so the forward is unchanged unless features are clamped.</summary>
    public bool UseErrorTerm { get; init; }

    /// <summary>Features forced to a value before decoding (0 ablates).</summary>
    public IReadOnlyList<FeatureClamp> Clamp { get; init; } = [];

    /// <summary>Return the feature activations (before clamping) in <see cref="RunResult.Features"/>.</summary>
    public bool CaptureFeatures { get; init; }

    /// <summary>
    /// Leave BOS positions alone (their activation passes unchanged and their features read 0). Gemma Scope SAEs were
    /// not trained on BOS, whose features are meaningless and often huge. On by default; BOS is
    /// <see cref="GemmaModelOptions.BosId"/>.
    /// </summary>
    public bool ExcludeBos { get; init; } = true;

    /// <summary>
    /// Splice the SAE at <see cref="Site"/> although it was trained on another hook point (its hook name). Off by default:
    /// such a splice is refused with both names. The widths must agree either way.
    /// </summary>
    public bool AllowOtherSite { get; init; }

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder("SaeSplice(").Append(Site.Name).Append(", ").Append(Sae);
        if (UseErrorTerm)
        {
            sb.Append(", error term");
        }

        if (Clamp.Count > 0)
        {
            sb.Append(", clamp ").AppendJoin(", ", Clamp.Select(c => string.Create(CultureInfo.InvariantCulture, $"#{c.Feature}={c.Value:G6}")));
        }

        if (CaptureFeatures)
        {
            sb.Append(", features captured");
        }

        if (!ExcludeBos)
        {
            sb.Append(", BOS included");
        }

        if (AllowOtherSite)
        {
            sb.Append(", other site allowed");
        }

        return sb.Append(')').ToString();
    }
}

/// <summary>Force one SAE feature to <paramref name="Value"/> in a splice.</summary>
/// <param name="Feature">Feature index.</param>
/// <param name="Value">The activation it gets at every token.</param>
public readonly record struct FeatureClamp(int Feature, float Value);

/// <summary>Add a vector to the activation at a hook point, at every token: x + v (in the graph).</summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed record Steering
{
    private Steering(HookPoint site, float[] vector, string? source, string? saeHookName)
    {
        Site = site;
        Vector = vector;
        Source = source;
        SaeHookName = saeHookName;
    }

    /// <summary>Where to add.</summary>
    public HookPoint Site { get; }

    /// <summary>The vector added to every token's activation.</summary>
    public ReadOnlyMemory<float> Vector { get; }

    /// <summary>
    /// Steer at <see cref="Site"/> with an SAE's direction although the SAE was trained on another hook point. Off by
    /// default: such steering is refused with both names when the run starts. The widths must agree either way.
    /// </summary>
    public bool AllowOtherSite { get; init; }

    /// <summary>What the vector is, for messages: e.g. "feature 7 × 8 of SaeTensors(d_in=48, d_sae=40, blocks.1.hook_resid_post)".</summary>
    internal string? Source { get; }

    /// <summary>The hook name of the SAE the direction came from, when it knows one.</summary>
    internal string? SaeHookName { get; }

    /// <summary>x + strength · W_dec[feature] (the feature's decoder direction).</summary>
    /// <param name="site">Where to add.</param>
    /// <param name="sae">The SAE whose decoder direction is added.</param>
    /// <param name="feature">Feature index.</param>
    /// <param name="strength">Multiplier of the direction.</param>
    public static Steering Feature(HookPoint site, SaeTensors sae, int feature, float strength)
    {
        ArgumentNullException.ThrowIfNull(site);
        var row = SaeTensors.DecoderRow(sae, feature);
        var v = new float[row.Length];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = strength * row[i];
        }

        return new Steering(site, v, Describe(sae.ToString() ?? nameof(SaeTensors), feature, strength), sae.HookName);
    }

    /// <summary>x + strength · W_dec[feature] at the SAE's own hook point (<see cref="SaeTensors.HookName"/>).</summary>
    /// <param name="sae">The SAE whose decoder direction is added; it must carry its hook name.</param>
    /// <param name="feature">Feature index.</param>
    /// <param name="strength">Multiplier of the direction.</param>
    public static Steering Feature(SaeTensors sae, int feature, float strength) =>
        Feature(HookPoint.ForSae(sae?.HookName, sae?.ToString() ?? nameof(SaeTensors)), sae!, feature, strength);

    /// <summary>x + strength · W_dec[feature] of a loaded SAE or transcoder (whose directions are OutputSize wide).</summary>
    /// <param name="site">Where to add (normally the SAE's own site; a transcoder's output site).</param>
    /// <param name="sae">The SAE or transcoder whose decoder direction is added.</param>
    /// <param name="feature">Feature index.</param>
    /// <param name="strength">Multiplier of the direction.</param>
    public static Steering Feature(HookPoint site, JumpReLUSae sae, int feature, float strength)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(sae);
        var v = sae.GetDecoderDirection(feature);
        for (int i = 0; i < v.Length; i++)
        {
            v[i] *= strength;
        }

        return new Steering(site, v, Describe(sae.ToString(), feature, strength), DecoderHookName(sae));
    }

    /// <summary>
    /// x + strength · W_dec[feature] of a loaded SAE at its own hook point (<see cref="SaeConfig.HookName"/>), or of a
    /// transcoder at its output site (<see cref="SaeConfig.OutputHookName"/>, e.g. <c>blocks.5.hook_mlp_out</c>).
    /// </summary>
    /// <param name="sae">The SAE or transcoder whose decoder direction is added; it must carry that hook name.</param>
    /// <param name="feature">Feature index.</param>
    /// <param name="strength">Multiplier of the direction.</param>
    /// <exception cref="ArgumentException">The SAE has no such hook name, or one that is not a Gemma hook point.</exception>
    public static Steering Feature(JumpReLUSae sae, int feature, float strength) =>
        Feature(HookPoint.ForSae(DecoderHookName(sae), sae?.ToString() ?? nameof(sae)), sae!, feature, strength);

    // Where the decoder's directions live: an SAE's own site, a transcoder's output site.
    private static string? DecoderHookName(JumpReLUSae? sae) => sae is JumpReLUTranscoder t ? t.OutputHookName : sae?.Config.HookName;

    /// <summary>x + vector (the vector is copied).</summary>
    /// <param name="site">Where to add.</param>
    /// <param name="vector">The vector, one value per element of the site's rows.</param>
    public static Steering Add(HookPoint site, ReadOnlySpan<float> vector)
    {
        ArgumentNullException.ThrowIfNull(site);
        return new Steering(site, vector.ToArray(), null, null);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"Steering({Site.Name}, {Source ?? $"a vector of {Vector.Length}"}{(AllowOtherSite ? ", other site allowed" : "")})");

    private static string Describe(string sae, int feature, float strength) =>
        string.Create(CultureInfo.InvariantCulture, $"feature {feature} × {strength:G6} of {sae}");
}

/// <summary>An arbitrary edit of one sequence's activations at a hook point: <paramref name="activations"/> is [tokens × width], edited in place.</summary>
public delegate void ActivationEdit(Span<float> activations, int tokens, int width);

/// <summary>
/// A C# callback at a hook point; the forward continues with the edited activation (the graph runs in segments cut at
/// the site). Captures of later sites show the edit; a capture of this site shows the callback's input, and
/// <see cref="RunResult.EditedActivations"/> its output.
/// </summary>
/// <param name="Site">Where to call.</param>
/// <param name="Edit">The edit, called once per sequence of the batch.</param>
public sealed record ActivationHook(HookPoint Site, ActivationEdit Edit);

/// <summary>
/// Interventions for one run or generation. Several may be combined, at different hook points. They apply in forward
/// order, as TransformerLens hooks do: an edit is seen by every later site, including a site that reads the same tensor
/// (<c>blocks.{l}.hook_resid_post</c> is followed by <c>blocks.{l+1}.hook_resid_pre</c>). At one site: splice, then
/// steering, then the C# callback. Capturing an edited site returns its value before its own edits
/// (<see cref="RunResult.Activations"/>) and after them (<see cref="RunResult.EditedActivations"/>).
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed record Interventions
{
    /// <summary>No intervention.</summary>
    public static Interventions None { get; } = new();

    /// <summary>SAE splices.</summary>
    public IReadOnlyList<SaeSplice> Splice { get; init; } = [];

    /// <summary>Steering vectors (applied after a splice at the same site).</summary>
    public IReadOnlyList<Steering> Steer { get; init; } = [];

    /// <summary>C# callbacks (applied after in-graph interventions at the same site).</summary>
    public IReadOnlyList<ActivationHook> Hooks { get; init; } = [];

    internal bool IsEmpty => Splice.Count == 0 && Steer.Count == 0 && Hooks.Count == 0;

    /// <inheritdoc/>
    public override string ToString() => IsEmpty
        ? "Interventions(none)"
        : "Interventions(" + string.Join("; ", Splice.Select(s => s?.ToString()).Concat(Steer.Select(s => s?.ToString()))
            .Concat(Hooks.Select(h => $"ActivationHook({h?.Site.Name})"))) + ")";
}
