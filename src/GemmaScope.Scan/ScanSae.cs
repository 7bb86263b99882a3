namespace GemmaScope.Scan;

/// <summary>
/// One dictionary to scan: a JumpReLU SAE or transcoder, the hook point whose activations it encodes, and a name used
/// in the tables and the dashboard. Several are scanned in one forward pass of the model.
/// </summary>
public sealed class ScanSae
{
    private readonly Func<ReadOnlyMemory<float>, SparseFeatureBatch> _encode;
    private readonly Func<int, float[]> _decoderRow;

    private ScanSae(string name, HookPoint hook, int inputSize, int featureCount, string source, Func<ReadOnlyMemory<float>, SparseFeatureBatch> encode, Func<int, float[]> decoderRow)
    {
        Name = name;
        Hook = hook;
        InputSize = inputSize;
        FeatureCount = featureCount;
        Source = source;
        _encode = encode;
        _decoderRow = decoderRow;
    }

    /// <summary>The name in the tables (unique within a scan).</summary>
    public string Name { get; }

    /// <summary>Where its input is read.</summary>
    public HookPoint Hook { get; }

    /// <summary>d_in.</summary>
    public int InputSize { get; }

    /// <summary>d_sae.</summary>
    public int FeatureCount { get; }

    /// <summary>The file or folder it was loaded from (for the manifest).</summary>
    public string Source { get; }

    /// <summary>Neuronpedia's <c>model/sae</c> id (e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>) for dashboard links; null for none.</summary>
    public string? NeuronpediaId { get; init; }

    /// <summary>An SAE read at its own hook (<see cref="SaeConfig.HookName"/>) unless <paramref name="hook"/> names another.</summary>
    /// <param name="sae">The SAE; not owned.</param>
    /// <param name="name">Table name; default: the hook name.</param>
    /// <param name="hook">The hook point; default: the SAE's own.</param>
    public static ScanSae From(JumpReLUSae sae, string? name = null, HookPoint? hook = null)
    {
        ArgumentNullException.ThrowIfNull(sae);
        hook ??= HookPoint.Of(sae);
        return new ScanSae(name ?? hook.Name, hook, sae.InputSize, sae.FeatureCount, sae.SourcePath ?? "(in memory)",
            a => sae.EncodeSparse(a.Span), sae.GetDecoderDirection);
    }

    /// <summary>A transcoder read at its input hook; its decoder rows (written to the output hook) give the logit lens.</summary>
    /// <param name="transcoder">The transcoder; not owned.</param>
    /// <param name="name">Table name; default: the input hook name.</param>
    /// <param name="hook">The hook point; default: the transcoder's input hook.</param>
    public static ScanSae From(JumpReLUTranscoder transcoder, string? name = null, HookPoint? hook = null)
    {
        ArgumentNullException.ThrowIfNull(transcoder);
        hook ??= HookPoint.ForSae(transcoder.InputHookName, transcoder.ToString());
        return new ScanSae(name ?? hook.Name, hook, transcoder.InputSize, transcoder.FeatureCount, transcoder.SourcePath ?? "(in memory)",
            a => transcoder.EncodeSparse(a.Span), transcoder.GetDecoderDirection);
    }

    /// <summary>A copy with another Neuronpedia id.</summary>
    public ScanSae WithNeuronpediaId(string? id) => new(Name, Hook, InputSize, FeatureCount, Source, _encode, _decoderRow) { NeuronpediaId = id };

    /// <summary>A copy with another name (and Neuronpedia id).</summary>
    public ScanSae WithName(string name, string? neuronpediaId = null) => new(name, Hook, InputSize, FeatureCount, Source, _encode, _decoderRow) { NeuronpediaId = neuronpediaId ?? NeuronpediaId };

    internal SparseFeatureBatch Encode(ReadOnlyMemory<float> activations) => _encode(activations);

    internal float[] DecoderRow(int feature) => _decoderRow(feature);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({FeatureCount} features at {Hook.Name}, {Source})";
}
