using GemmaScope.Formats;

namespace GemmaScope.Cli;

/// <summary>
/// What the command line names with --sae or a path: an SAE, or a transcoder (Gemma Scope's transcoders releases and Gemma
/// Scope 2's <c>transcoder</c> folders). info and features need the same few things of either: sizes, configuration, the
/// hook points read and written, sparse features, and the reconstruction of the written site.
/// </summary>
internal sealed class SaeOrTranscoder : IDisposable
{
    private SaeOrTranscoder(JumpReLUSae? sae, JumpReLUTranscoder? transcoder)
    {
        Sae = sae;
        Transcoder = transcoder;
    }

    public JumpReLUSae? Sae { get; }

    public JumpReLUTranscoder? Transcoder { get; }

    public static SaeOrTranscoder Of(JumpReLUSae sae) => new(sae, null);

    public static SaeOrTranscoder Of(JumpReLUTranscoder transcoder) => new(null, transcoder);

    /// <summary>A local file or folder: an SAE, or a transcoder when its files say so (config.json type, a skip connection).</summary>
    public static SaeOrTranscoder Load(string path, SaeLoadOptions? options = null)
    {
        try
        {
            return Of(JumpReLUSae.Load(path, options));
        }
        catch (SaeFormatException e) when (e.Actual == "a transcoder")
        {
            return Of(JumpReLUTranscoder.Load(path, options));
        }
    }

    public bool IsTranscoder => Transcoder is not null;

    public string Kind => IsTranscoder ? "transcoder" : "sae";

    public int InputSize => Sae?.InputSize ?? Transcoder!.InputSize;

    /// <summary>Width of what it reconstructs: the SAE's input, the transcoder's output site.</summary>
    public int OutputSize => Sae?.InputSize ?? Transcoder!.OutputSize;

    public int FeatureCount => Sae?.FeatureCount ?? Transcoder!.FeatureCount;

    public SaeConfig Config => Sae?.Config ?? Transcoder!.Config;

    public SaePrecision Precision => Sae?.Precision ?? Transcoder!.Precision;

    public string? SourcePath => Sae?.SourcePath ?? Transcoder!.SourcePath;

    /// <summary>The hook point it writes (an SAE reconstructs the one it reads).</summary>
    public string? OutputHookName => IsTranscoder ? Transcoder!.OutputHookName : Sae!.Config.HookName;

    public SparseFeatureBatch EncodeSparse(ReadOnlySpan<float> activations) =>
        Sae is not null ? Sae.EncodeSparse(activations) : Transcoder!.EncodeSparse(activations);

    /// <summary>x̂ for each token: the SAE's reconstruction of its input, or the transcoder's prediction of its output site.</summary>
    public float[] Reconstruct(ReadOnlySpan<float> activations, SparseFeatureBatch features)
    {
        if (Sae is not null)
        {
            var xhat = new float[activations.Length];
            Sae.DecodeSparse(features, xhat);
            return xhat;
        }

        return Transcoder!.Reconstruct(activations);
    }

    public override string ToString() => Sae?.ToString() ?? Transcoder!.ToString();

    public void Dispose()
    {
        Sae?.Dispose();
        Transcoder?.Dispose();
    }
}
