namespace GemmaScope.Onnx;

/// <summary>
/// The five tensors of a Gemma Scope JumpReLU SAE as the graph splice binds them, over caller-owned arrays or memory
/// (checked for consistent sizes; no copies: ONNX Runtime reads this memory directly). Immutable.
/// pre = x·W_enc + b_enc; f = pre·[pre &gt; threshold and pre &gt; 0]; x̂ = f·W_dec + b_dec.
/// </summary>
[System.Diagnostics.DebuggerDisplay("{ToString(),nq}")]
public sealed class SaeTensors
{
    private SaeTensors(int dIn, int dSae, ReadOnlyMemory<float> wEnc, ReadOnlyMemory<float> bEnc, ReadOnlyMemory<float> threshold,
        ReadOnlyMemory<float> wDec, ReadOnlyMemory<float> bDec, string? hookName)
    {
        HookName = hookName;
        InputSize = dIn;
        FeatureCount = dSae;
        EncoderWeights = wEnc;
        EncoderBias = bEnc;
        Threshold = threshold;
        DecoderWeights = wDec;
        DecoderBias = bDec;
    }

    /// <summary>d_in: the width of the hooked activation.</summary>
    public int InputSize { get; }

    /// <summary>d_sae: the number of features.</summary>
    public int FeatureCount { get; }

    /// <summary>W_enc, row-major [d_in, d_sae].</summary>
    public ReadOnlyMemory<float> EncoderWeights { get; }

    /// <summary>b_enc [d_sae].</summary>
    public ReadOnlyMemory<float> EncoderBias { get; }

    /// <summary>threshold [d_sae].</summary>
    public ReadOnlyMemory<float> Threshold { get; }

    /// <summary>W_dec, row-major [d_sae, d_in].</summary>
    public ReadOnlyMemory<float> DecoderWeights { get; }

    /// <summary>b_dec [d_in].</summary>
    public ReadOnlyMemory<float> DecoderBias { get; }

    /// <summary>
    /// The TransformerLens hook name the SAE was trained on (e.g. <c>blocks.20.hook_resid_post</c>), or null if unknown.
    /// Splices and steering refuse another site unless asked to allow it.
    /// </summary>
    public string? HookName { get; }

    /// <summary>The loaded SAE these tensors came from (<see cref="From"/>), whose Core kernels the native engine's splice uses; null for arrays.</summary>
    internal JumpReLUSae? Source { get; private init; }

    /// <summary>The same tensors (no copy) marked as belonging to another hook point; null for none.</summary>
    /// <param name="hookName">A TransformerLens hook name such as <c>blocks.20.hook_resid_post</c>, or null.</param>
    public SaeTensors WithHookName(string? hookName) =>
        new(InputSize, FeatureCount, EncoderWeights, EncoderBias, Threshold, DecoderWeights, DecoderBias, hookName) { Source = Source };

    /// <inheritdoc/>
    public override string ToString() =>
        $"SaeTensors(d_in={InputSize}, d_sae={FeatureCount}{(HookName is null ? "" : ", " + HookName)})";

    /// <summary>Wraps the five tensors; sizes must agree with <paramref name="inputSize"/> × <paramref name="featureCount"/>.</summary>
    /// <param name="inputSize">d_in.</param>
    /// <param name="featureCount">d_sae.</param>
    /// <param name="encoderWeights">W_enc [d_in, d_sae].</param>
    /// <param name="encoderBias">b_enc [d_sae].</param>
    /// <param name="threshold">threshold [d_sae].</param>
    /// <param name="decoderWeights">W_dec [d_sae, d_in].</param>
    /// <param name="decoderBias">b_dec [d_in].</param>
    /// <param name="hookName">The hook point the SAE belongs to, or null if unknown (<see cref="HookName"/>).</param>
    /// <exception cref="ArgumentException">A tensor has the wrong length; the message names it, expected and actual.</exception>
    public static SaeTensors Create(int inputSize, int featureCount, ReadOnlyMemory<float> encoderWeights, ReadOnlyMemory<float> encoderBias,
        ReadOnlyMemory<float> threshold, ReadOnlyMemory<float> decoderWeights, ReadOnlyMemory<float> decoderBias, string? hookName = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        Check("W_enc", encoderWeights.Length, (long)inputSize * featureCount);
        Check("b_enc", encoderBias.Length, featureCount);
        Check("threshold", threshold.Length, featureCount);
        Check("W_dec", decoderWeights.Length, (long)inputSize * featureCount);
        Check("b_dec", decoderBias.Length, inputSize);
        return new SaeTensors(inputSize, featureCount, encoderWeights, encoderBias, threshold, decoderWeights, decoderBias, hookName);
    }

    /// <summary>
    /// The tensors of a loaded <see cref="JumpReLUSae"/>. A float32 SAE is bound without copying (ONNX Runtime reads its
    /// memory map directly; keep the SAE undisposed while runs use it); a bfloat16 SAE's matrices are widened into float32 copies.
    /// </summary>
    /// <param name="sae">The SAE.</param>
    /// <exception cref="ArgumentException">A transcoder: it writes another site than it reads, so it cannot be spliced as an SAE (use TranscoderSplice).</exception>
    public static SaeTensors From(JumpReLUSae sae)
    {
        ArgumentNullException.ThrowIfNull(sae);
        if (sae is JumpReLUTranscoder)
        {
            throw new ArgumentException($"{sae} reads one site and writes another; splice it with TranscoderSplice, not as an SAE.", nameof(sae));
        }

        ReadOnlyMemory<float> Matrix(SaeTensor t)
        {
            if (sae.Precision == SaePrecision.Float32)
            {
                return sae.GetFloat32Memory(t);
            }

            var wide = new float[checked(sae.InputSize * sae.FeatureCount)];
            if (t == SaeTensor.DecoderWeights)
            {
                sae.CopyDecoderWeights(wide);
            }
            else
            {
                sae.CopyEncoderWeights(wide);
            }

            return wide;
        }

        var tensors = Create(sae.InputSize, sae.FeatureCount, Matrix(SaeTensor.EncoderWeights), sae.GetFloat32Memory(SaeTensor.EncoderBias),
            sae.GetFloat32Memory(SaeTensor.Threshold), Matrix(SaeTensor.DecoderWeights), sae.GetFloat32Memory(SaeTensor.DecoderBias), sae.Config.HookName);
        return new SaeTensors(tensors.InputSize, tensors.FeatureCount, tensors.EncoderWeights, tensors.EncoderBias, tensors.Threshold,
            tensors.DecoderWeights, tensors.DecoderBias, tensors.HookName)
        { Source = sae };
    }

    /// <summary>Row <paramref name="feature"/> of W_dec: the feature's direction in activation space.</summary>
    public static ReadOnlySpan<float> DecoderRow(SaeTensors sae, int feature)
    {
        ArgumentNullException.ThrowIfNull(sae);
        if ((uint)feature >= (uint)sae.FeatureCount)
        {
            throw new ArgumentOutOfRangeException(nameof(feature), feature, $"The SAE has {sae.FeatureCount} features.");
        }

        return sae.DecoderWeights.Span.Slice(feature * sae.InputSize, sae.InputSize);
    }

    private static void Check(string name, int actual, long expected)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"SAE tensor {name} has {actual} elements, expected {expected}.");
        }
    }
}
