namespace GemmaScope.Onnx.Runtime.Engines;

/// <summary>
/// What runs a <see cref="GemmaModel"/>'s forward: ONNX Runtime over an edited graph (<see cref="Ort.OrtModelEngine"/>) or the
/// native C# engine (NativeModelEngine). The facade owns everything engine-independent (argument checks,
/// tokenization, the intervention checks, loss, generation's sampling loop); an engine turns one validated request into rows.
/// </summary>
internal interface IModelEngine : IDisposable
{
    /// <summary>Which engine this is.</summary>
    GemmaEngineKind Kind { get; }

    /// <summary>The .onnx file or the checkpoint folder.</summary>
    string ModelPath { get; }

    /// <summary>The Hugging Face checkpoint folder the weights come from; null for a loaded ONNX graph.</summary>
    string? CheckpointFolder { get; }

    /// <summary>Decoder blocks.</summary>
    int LayerCount { get; }

    /// <summary>Per-head width (head_dim) when known, for per-head views; null for an exported graph.</summary>
    int? HeadDim { get; }

    /// <summary>Whether <see cref="Decode"/> can keep a KV cache (false: generation recomputes the prefix).</summary>
    bool HasKvCache { get; }

    /// <summary>Whether this engine can run <paramref name="point"/>; false with the reason (for messages).</summary>
    bool Supports(HookPoint point, out string? why);

    /// <summary>Where the hook lives (a graph tensor, or the place in the native loop), for diagnostics.</summary>
    string Describe(HookPoint point);

    /// <summary>The width of the hook's rows (−1 when it varies with the key positions: scores, pattern).</summary>
    int Width(HookPoint point);

    /// <summary>Runs a batch; interventions were checked by the facade (<see cref="InterventionChecks"/>).</summary>
    EngineOutput Run(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint> capture, Interventions interventions, bool wantLogits);

    /// <summary>A step-by-step decoder for generation: each call feeds new tokens and returns the last row's logits.</summary>
    IDecoder Decode(Interventions interventions, bool useKvCache);
}

/// <summary>One generation's forward state (the KV cache when used).</summary>
internal interface IDecoder : IDisposable
{
    /// <summary>Whether the KV cache is in use (else every step is given, and recomputes, the whole sequence).</summary>
    bool UsesKvCache { get; }

    /// <summary>Runs <paramref name="ids"/> (the new tokens with a KV cache, else the whole sequence); the last row's logits.</summary>
    ReadOnlySpan<float> Step(int[] ids);
}

/// <summary>
/// Rows an engine returns, per hook point: sequence s occupies rows <c>RowStart[s] .. RowStart[s] + length</c> of each
/// [rows, width] array (a padded engine leaves gaps; a packed one does not).
/// </summary>
internal sealed class EngineOutput
{
    public required Dictionary<HookPoint, (float[] Data, int Width)> Activations { get; init; }

    public required Dictionary<HookPoint, (float[] Data, int Width)> Edited { get; init; }

    public required Dictionary<HookPoint, (float[] Data, int Width)> Features { get; init; }

    /// <summary>[rows, vocab] logits in the same row layout, or null.</summary>
    public float[]? Logits { get; init; }

    public int Vocab { get; init; }

    /// <summary>First row of each sequence.</summary>
    public required int[] RowStart { get; init; }
}
