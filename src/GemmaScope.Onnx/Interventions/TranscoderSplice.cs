using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace GemmaScope.Onnx;

/// <summary>
/// Replace the MLP block's output (<see cref="Output"/>, <c>blocks.{l}.hook_mlp_out</c>) by a transcoder's prediction of it,
/// computed from the transcoder's input site (<see cref="Input"/>: <c>ln2.hook_normalized</c> for Gemma Scope,
/// <c>hook_mlp_in</c> for Gemma Scope 2) of the same forward pass.
/// <para>
/// It runs as two C# callbacks (<see cref="Hooks"/>): the first reads the input site, the second writes the output site,
/// so the graph runs in segments cut at both. Pass it with <see cref="ToInterventions"/> or add <see cref="Hooks"/> to an
/// <see cref="Interventions"/>. Not thread-safe: one splice must not serve two runs at once (the input read by one
/// callback is handed to the other through this object); make one per concurrent run.
/// </para>
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class TranscoderSplice
{
    private readonly Queue<float[]> _inputs = new();
    private IReadOnlyList<ActivationHook>? _hooks;

    /// <summary>Splices a transcoder at the sites it names (<see cref="JumpReLUTranscoder.InputHookName"/>, <see cref="JumpReLUTranscoder.OutputHookName"/>).</summary>
    /// <param name="transcoder">The transcoder; keep it undisposed while runs use this splice.</param>
    /// <exception cref="ArgumentException">The transcoder does not know its sites, or they are not hook points of the model family.</exception>
    public TranscoderSplice(JumpReLUTranscoder transcoder)
        : this(Site(transcoder?.InputHookName, transcoder, "input"), Site(transcoder?.OutputHookName, transcoder, "output"), transcoder!)
    {
    }

    /// <summary>Splices a transcoder reading <paramref name="input"/> and replacing <paramref name="output"/>.</summary>
    /// <param name="input">The site it reads; must come before <paramref name="output"/> in the forward pass.</param>
    /// <param name="output">The site it replaces.</param>
    /// <param name="transcoder">The transcoder; keep it undisposed while runs use this splice.</param>
    public TranscoderSplice(HookPoint input, HookPoint output, JumpReLUTranscoder transcoder)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(transcoder);
        if (input.ForwardOrder >= output.ForwardOrder)
        {
            throw new ArgumentException($"The transcoder's input site {input.Name} must come before its output site {output.Name} in the forward pass.", nameof(input));
        }

        Input = input;
        Output = output;
        Transcoder = transcoder;
    }

    /// <summary>The site the transcoder reads.</summary>
    public HookPoint Input { get; }

    /// <summary>The site whose activation is replaced.</summary>
    public HookPoint Output { get; }

    /// <summary>The transcoder.</summary>
    public JumpReLUTranscoder Transcoder { get; }

    /// <summary>
    /// Add the error term (the real MLP output minus the transcoder's unclamped prediction) back, so the forward is unchanged
    /// unless features are clamped.
    /// </summary>
    public bool UseErrorTerm { get; init; }

    /// <summary>Features forced to a value (0 ablates); the output changes by (value − f)·W_dec[feature].</summary>
    public IReadOnlyList<FeatureClamp> Clamp { get; init; } = [];

    /// <summary>
    /// Leave BOS alone: position 0 of each sequence, where a sequence starts with BOS (the real MLP output passes). Gemma
    /// Scope did not train on BOS. On by default, as <see cref="SaeSplice.ExcludeBos"/>. Turn it off for KV-cache
    /// generation steps, whose position 0 is a new token.
    /// </summary>
    public bool ExcludeBos { get; init; } = true;

    /// <summary>The former name of <see cref="ExcludeBos"/>.</summary>
    [Obsolete("Use ExcludeBos, the option name SaeSplice shares.")]
    public bool ExcludeFirstPosition
    {
        get => ExcludeBos;
        init => ExcludeBos = value;
    }

    /// <summary>The two callbacks: read <see cref="Input"/>, then replace <see cref="Output"/>.</summary>
    public IReadOnlyList<ActivationHook> Hooks => _hooks ??= [new ActivationHook(Input, ReadInput), new ActivationHook(Output, WriteOutput)];

    /// <summary>Interventions holding just this splice.</summary>
    public Interventions ToInterventions() => new() { Hooks = Hooks };

    /// <inheritdoc/>
    public override string ToString()
    {
        var sb = new StringBuilder("TranscoderSplice(").Append(Input.Name).Append(" → ").Append(Output.Name).Append(", ").Append(Transcoder);
        if (UseErrorTerm)
        {
            sb.Append(", error term");
        }

        if (Clamp.Count > 0)
        {
            sb.Append(", clamp ").AppendJoin(", ", Clamp.Select(c => string.Create(CultureInfo.InvariantCulture, $"#{c.Feature}={c.Value:G6}")));
        }

        return sb.Append(')').ToString();
    }

    private static HookPoint Site(string? name, JumpReLUTranscoder? tc, string which)
    {
        ArgumentNullException.ThrowIfNull(tc, "transcoder");
        if (name is null)
        {
            throw new ArgumentException($"{tc} has no {which} hook name; load it through GemmaScopeHub, from Gemma Scope 2's config.json, " +
                "or with SaeLoadOptions.Config (HookName, OutputHookName); or name the sites explicitly.", "transcoder");
        }

        return HookPoint.TryParse(name, out var p) ? p
            : throw new ArgumentException($"{tc} {(which == "input" ? "reads" : "writes")} '{name}', which is not a hook point of this model family.", "transcoder");
    }

    private void ReadInput(Span<float> activations, int tokens, int width)
    {
        if (width != Transcoder.InputSize)
        {
            throw new ArgumentException($"{Input.Name} is {width} wide but {Transcoder} reads {Transcoder.InputSize}-wide activations.");
        }

        lock (_inputs)
        {
            _inputs.Enqueue(activations.ToArray());
        }
    }

    private void WriteOutput(Span<float> activations, int tokens, int width)
    {
        float[] x;
        lock (_inputs)
        {
            x = _inputs.Count > 0 ? _inputs.Dequeue() : throw new InvalidOperationException($"{this}: no input was read for this sequence (is the splice shared between runs?).");
        }

        if (width != Transcoder.OutputSize)
        {
            throw new ArgumentException($"{Output.Name} is {width} wide but {Transcoder} writes {Transcoder.OutputSize}-wide activations.");
        }

        var y = Transcoder.Reconstruct(x);
        float[]? f = Clamp.Count > 0 ? Transcoder.Encode(x) : null;
        var directions = Clamp.Select(c => Transcoder.GetDecoderDirection(c.Feature)).ToArray();
        for (int t = ExcludeBos ? 1 : 0; t < tokens; t++)
        {
            var real = activations.Slice(t * width, width);
            var pred = y.AsSpan(t * width, width);
            if (!UseErrorTerm)
            {
                // With the error term, real = pred + (real − pred): the row stays as it is before clamps.
                pred.CopyTo(real);
            }

            for (int c = 0; c < Clamp.Count; c++)
            {
                float delta = Clamp[c].Value - f![(t * Transcoder.FeatureCount) + Clamp[c].Feature];
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(directions[c], delta, real, real);
            }
        }
    }
}
