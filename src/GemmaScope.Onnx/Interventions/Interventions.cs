namespace GemmaScope.Onnx;

/// <summary>Replace the activation at a hook point by an SAE's reconstruction, inside the graph (SAELens's HookedSAETransformer splice).</summary>
/// <param name="Site">Where to splice.</param>
/// <param name="Sae">The SAE; its d_in must equal the site's width.</param>
public sealed record SaeSplice(HookPoint Site, ISaeTensors Sae)
{
    /// <summary>Splices a loaded SAE; a float32 SAE's memory is bound without copying (see <see cref="SaeTensors.From"/>).</summary>
    /// <param name="site">Where to splice.</param>
    /// <param name="sae">The SAE; keep it undisposed while runs use this splice.</param>
    public SaeSplice(HookPoint site, JumpReLUSae sae)
        : this(site, SaeTensors.From(sae))
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
}

/// <summary>Force one SAE feature to <paramref name="Value"/> in a splice.</summary>
/// <param name="Feature">Feature index.</param>
/// <param name="Value">The activation it gets at every token.</param>
public readonly record struct FeatureClamp(int Feature, float Value);

/// <summary>Add a vector to the activation at a hook point, at every token: x + v (in the graph).</summary>
public sealed record Steering
{
    private Steering(HookPoint site, float[] vector)
    {
        Site = site;
        Vector = vector;
    }

    /// <summary>Where to add.</summary>
    public HookPoint Site { get; }

    /// <summary>The vector added to every token's activation.</summary>
    public ReadOnlyMemory<float> Vector { get; }

    /// <summary>x + strength · W_dec[feature] (the feature's decoder direction).</summary>
    public static Steering Feature(HookPoint site, ISaeTensors sae, int feature, float strength)
    {
        ArgumentNullException.ThrowIfNull(site);
        var row = SaeTensors.DecoderRow(sae, feature);
        var v = new float[row.Length];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = strength * row[i];
        }

        return new Steering(site, v);
    }

    /// <summary>x + strength · W_dec[feature] of a loaded SAE.</summary>
    /// <param name="site">Where to add.</param>
    /// <param name="sae">The SAE whose decoder direction is added.</param>
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

        return new Steering(site, v);
    }

    /// <summary>x + vector (the vector is copied).</summary>
    public static Steering Add(HookPoint site, ReadOnlySpan<float> vector)
    {
        ArgumentNullException.ThrowIfNull(site);
        return new Steering(site, vector.ToArray());
    }
}

/// <summary>An arbitrary edit of one sequence's activations at a hook point: <paramref name="activations"/> is [tokens × width], edited in place.</summary>
public delegate void ActivationEdit(Span<float> activations, int tokens, int width);

/// <summary>A C# callback at a hook point; the forward continues with the edited activation (the graph runs in segments cut at the site).</summary>
/// <param name="Site">Where to call.</param>
/// <param name="Edit">The edit, called once per sequence of the batch.</param>
public sealed record ActivationHook(HookPoint Site, ActivationEdit Edit);

/// <summary>Interventions for one run or generation. Several may be combined, at different hook points.</summary>
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
}
