using System.Buffers;
using System.Numerics.Tensors;
using GemmaScope.Formats;
using GemmaScope.Kernels;

namespace GemmaScope;

/// <summary>
/// A JumpReLU transcoder: it reads one site (the MLP's input) and predicts another (the MLP's output).
/// <para>pre = x·W_enc + b_enc; f = pre where pre &gt; threshold and pre &gt; 0, else 0;
/// y = f·W_dec + b_dec (+ x·W_skip for Gemma Scope 2's affine transcoders).</para>
/// <para>
/// Encoding runs on the same kernels as <see cref="JumpReLUSae"/>. Immutable once loaded and safe to use from many threads;
/// <see cref="Dispose"/> releases the memory map. Batches are row-major: x is tokens × <see cref="InputSize"/>,
/// f tokens × <see cref="FeatureCount"/>, y tokens × <see cref="OutputSize"/>.
/// </para>
/// </summary>
public sealed unsafe class JumpReLUTranscoder : IDisposable
{
    private const int Block = 16;
    private readonly SaeWeights _enc; // DIn = d_in: what the encode kernels read
    private readonly SaeWeights _dec; // DIn = d_out: what the decode kernels write
    private readonly float* _skip; // [d_in, d_out] or null
    private readonly List<IDisposable> _owned;
    private volatile bool _disposed;

    private JumpReLUTranscoder(SaeWeights enc, SaeWeights dec, float* skip, SaeConfig config, SaePrecision precision, int threads, string source, List<IDisposable> owned)
    {
        _enc = enc;
        _dec = dec;
        _skip = skip;
        Config = config;
        Precision = precision;
        MaxDegreeOfParallelism = Math.Max(1, threads);
        SourcePath = source;
        _owned = owned;
    }

    /// <summary>Input width d_in.</summary>
    public int InputSize => _enc.DIn;

    /// <summary>Output width d_out.</summary>
    public int OutputSize => _dec.DIn;

    /// <summary>Number of latents d_sae.</summary>
    public int FeatureCount => _enc.DSae;

    /// <summary>True for affine (skip) transcoders, whose output adds x·W_skip.</summary>
    public bool HasSkipConnection => _skip != null;

    /// <summary>Hook name the transcoder reads (e.g. <c>blocks.5.ln2.hook_normalized</c> or <c>blocks.5.hook_mlp_in</c>), if known.</summary>
    public string? InputHookName => Config.HookName;

    /// <summary>Hook name the transcoder predicts (e.g. <c>blocks.5.hook_mlp_out</c>), if known.</summary>
    public string? OutputHookName => Config.OutputHookName;

    /// <summary>Sites, model and sizes as far as known (<see cref="SaeConfig.HookName"/> is the input site).</summary>
    public SaeConfig Config { get; }

    /// <summary>Working precision of W_enc and W_dec (W_skip is always float32).</summary>
    public SaePrecision Precision { get; }

    /// <summary>Most threads one call uses.</summary>
    public int MaxDegreeOfParallelism { get; }

    /// <summary>The weight file.</summary>
    public string SourcePath { get; }

    /// <summary>
    /// Loads a transcoder: Gemma Scope's <c>params.npz</c> (W_enc, W_dec, b_enc, b_dec, threshold; sites from
    /// <see cref="SaeLoadOptions.Config"/>: <see cref="SaeConfig.HookName"/> and <see cref="SaeConfig.OutputHookName"/>) or Gemma Scope 2's
    /// <c>params.safetensors</c> with its <c>config.json</c> (w_enc, w_dec, b_enc, b_dec, threshold, optional affine_skip_connection), or a folder holding one.
    /// </summary>
    /// <param name="path">File or folder.</param>
    /// <param name="options">Precision, validation, threading, encoder packing and sites; null for defaults. <see cref="SaeLoadOptions.InputScale"/> must be 1;
    /// <see cref="SaeLoadOptions.Screening"/> is not used by transcoders.</param>
    /// <exception cref="SaeFormatException">Malformed file, shapes that disagree, or a config.json that says this is an SAE.</exception>
    public static JumpReLUTranscoder Load(string path, SaeLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= SaeLoadOptions.Default;
        if (options.InputScale != 1f)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.InputScale, "InputScale applies to embedding SAEs only; transcoders take 1");
        }

        var owned = new List<IDisposable>();
        try
        {
            var (file, tensors, fileConfig, scope2) = JumpReLUSae.OpenTensors(path, options, owned);
            if (scope2 is { IsTranscoder: false })
            {
                throw new SaeFormatException(file, "config.json type", "this is an SAE, not a transcoder; load it with JumpReLUSae.Load", "transcoder", "sae");
            }

            return Build(file, tensors, fileConfig, options, owned);
        }
        catch
        {
            foreach (var o in owned)
            {
                o.Dispose();
            }

            throw;
        }
    }

    private static JumpReLUTranscoder Build(string file, Dictionary<string, RawTensor> tensors, SaeConfig? fileConfig, SaeLoadOptions options, List<IDisposable> owned)
    {
        var wEnc = JumpReLUSae.Get(file, tensors, "W_enc", "w_enc");
        var wDec = JumpReLUSae.Get(file, tensors, "W_dec", "w_dec");
        var bEnc = JumpReLUSae.Get(file, tensors, "b_enc", null);
        var bDec = JumpReLUSae.Get(file, tensors, "b_dec", null);
        var thr = JumpReLUSae.Get(file, tensors, "threshold", null);
        bool a = tensors.TryGetValue("affine_skip_connection", out var skip);
        if (tensors.TryGetValue("W_skip", out var skip2))
        {
            if (a)
            {
                throw new SaeFormatException(file, "W_skip", "both 'W_skip' and 'affine_skip_connection' are present; which one is meant is ambiguous");
            }

            skip = skip2;
        }

        if (wEnc.Shape.Length != 2 || wDec.Shape.Length != 2)
        {
            var bad = wEnc.Shape.Length != 2 ? wEnc : wDec;
            throw new SaeFormatException(file, bad.Name, "must be a matrix", "2 dimensions", bad.ShapeText);
        }

        long dIn = wEnc.Shape[0], dSae = wEnc.Shape[1], dOut = wDec.Shape[1];
        if (dIn < 1 || dSae < 1 || dOut < 1 || dIn > int.MaxValue || dSae > int.MaxValue || dOut > int.MaxValue)
        {
            throw new SaeFormatException(file, wEnc.Name, "dimensions out of range", "1 ≤ d_in, d_sae, d_out ≤ 2^31 - 1", wEnc.ShapeText + " " + wDec.ShapeText);
        }

        JumpReLUSae.CheckShape(wDec, dSae, dOut);
        JumpReLUSae.CheckShape(bEnc, dSae);
        JumpReLUSae.CheckShape(thr, dSae);
        JumpReLUSae.CheckShape(bDec, dOut);
        if (skip is not null)
        {
            JumpReLUSae.CheckShape(skip, dIn, dOut);
        }

        if (fileConfig is not null && !string.Equals(fileConfig.Architecture, "jumprelu", StringComparison.OrdinalIgnoreCase))
        {
            throw new SaeFormatException(file, "cfg.json architecture", "only JumpReLU transcoders are supported", "jumprelu", fileConfig.Architecture);
        }

        var config = (options.Config ?? new SaeConfig()).MergedWith(fileConfig) with { InputSize = (int)dIn, FeatureCount = (int)dSae };
        bool bf16 = options.Precision == SaePrecision.BFloat16;
        float* wE = bf16 ? null : TensorConvert.AsFloat32(wEnc, 1f, owned);
        float* wD = bf16 ? null : TensorConvert.AsFloat32(wDec, 1f, owned);
        ushort* wEb = bf16 ? TensorConvert.AsBFloat16(wEnc, 1f, owned) : null;
        ushort* wDb = bf16 ? TensorConvert.AsBFloat16(wDec, 1f, owned) : null;
        float* be = TensorConvert.AsFloat32(bEnc, 1f, owned);
        float* bd = TensorConvert.AsFloat32(bDec, 1f, owned);
        float* th = TensorConvert.AsFloat32(thr, 1f, owned);
        float* sk = skip is null ? null : TensorConvert.AsFloat32(skip, 1f, owned);
        JumpReLUSae.CheckFinite(file, "b_enc", be, dSae);
        JumpReLUSae.CheckFinite(file, "b_dec", bd, dOut);
        JumpReLUSae.CheckFinite(file, "threshold", th, dSae);
        if (options.Validation == SaeValidation.Full)
        {
            if (bf16)
            {
                JumpReLUSae.CheckFinite(file, wEnc.Name, wEb, dIn, dSae);
                JumpReLUSae.CheckFinite(file, wDec.Name, wDb, dSae, dOut);
            }
            else
            {
                JumpReLUSae.CheckFinite(file, wEnc.Name, wE, dIn, dSae);
                JumpReLUSae.CheckFinite(file, wDec.Name, wD, dSae, dOut);
            }

            if (sk != null)
            {
                JumpReLUSae.CheckFinite(file, skip!.Name, sk, dIn, dOut);
            }
        }

        var enc = new SaeWeights { DIn = (int)dIn, DSae = (int)dSae, WEnc = wE, WDec = wD, WEncBf16 = wEb, WDecBf16 = wDb, BEnc = be, BDec = bd, Threshold = th };
        if (options.PackEncoder)
        {
            // As for JumpReLUSae: first in the list, so Dispose frees it (waiting for a background build) before the weights it reads.
            var packed = new PackedEncoderCache(owned);
            owned.Insert(0, packed);
            enc = enc with { Packed = packed };
        }

        var dec = enc with { DIn = (int)dOut };
        return new JumpReLUTranscoder(enc, dec, sk, config, options.Precision, options.MaxDegreeOfParallelism, file, owned);
    }

    /// <summary>Encodes a batch: f[t, :] = JumpReLU(x[t, :]·W_enc + b_enc).</summary>
    /// <param name="activations">tokens × InputSize floats, read at <see cref="InputHookName"/>.</param>
    /// <param name="features">tokens × FeatureCount floats, overwritten.</param>
    public void Encode(ReadOnlySpan<float> activations, Span<float> features)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int tokens = Tokens(activations);
        Check(features.Length, (long)tokens * FeatureCount, nameof(features));
        fixed (float* x = activations)
        fixed (float* f = features)
        {
            JumpReLUEncodeKernel.Encode(_enc, x, tokens, f, MaxDegreeOfParallelism);
        }

        GC.KeepAlive(this);
    }

    /// <summary>Encodes a batch into a new array of tokens × FeatureCount floats.</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    public float[] Encode(ReadOnlySpan<float> activations)
    {
        var f = new float[(long)Tokens(activations) * FeatureCount];
        Encode(activations, f);
        return f;
    }

    /// <summary>Encodes a batch straight to sparse form (active features only, by increasing index).</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    public SparseFeatureBatch EncodeSparse(ReadOnlySpan<float> activations)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int tokens = Tokens(activations);
        SparseFeatureBatch batch;
        fixed (float* x = activations)
        {
            batch = JumpReLUEncodeKernel.EncodeSparse(_enc, x, tokens, MaxDegreeOfParallelism);
        }

        GC.KeepAlive(this);
        return batch;
    }

    /// <summary>
    /// The decoder alone: y[t, :] = f[t, :]·W_dec + b_dec. For an affine transcoder this omits x·W_skip
    /// (the features do not determine it); use <see cref="Forward(ReadOnlySpan{float}, Span{float})"/> for the full output.
    /// </summary>
    /// <param name="features">tokens × FeatureCount floats.</param>
    /// <param name="output">tokens × OutputSize floats, overwritten.</param>
    public void Decode(ReadOnlySpan<float> features, Span<float> output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (features.Length % FeatureCount != 0)
        {
            throw new ArgumentException($"{nameof(features)} has {features.Length} floats, not a multiple of FeatureCount {FeatureCount}", nameof(features));
        }

        int tokens = features.Length / FeatureCount;
        Check(output.Length, (long)tokens * OutputSize, nameof(output));
        fixed (float* f = features)
        fixed (float* y = output)
        {
            DenseDecodeKernel.Decode(_dec, f, tokens, y, MaxDegreeOfParallelism);
        }

        GC.KeepAlive(this);
    }

    /// <summary>The transcoder's prediction of its output site: f(x)·W_dec + b_dec (+ x·W_skip).</summary>
    /// <param name="activations">tokens × InputSize floats, read at <see cref="InputHookName"/>.</param>
    /// <param name="output">tokens × OutputSize floats, overwritten.</param>
    public void Forward(ReadOnlySpan<float> activations, Span<float> output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int tokens = Tokens(activations);
        Check(output.Length, (long)tokens * OutputSize, nameof(output));
        var scratch = ArrayPool<float>.Shared.Rent(Math.Min(Block, Math.Max(tokens, 1)) * FeatureCount);
        try
        {
            for (int t0 = 0; t0 < tokens; t0 += Block)
            {
                int n = Math.Min(Block, tokens - t0);
                var x = activations.Slice(t0 * InputSize, n * InputSize);
                var y = output.Slice(t0 * OutputSize, n * OutputSize);
                var f = scratch.AsSpan(0, n * FeatureCount);
                Encode(x, f);
                Decode(f, y);
                if (_skip != null)
                {
                    AddSkip(x, y, n);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }

        GC.KeepAlive(this);
    }

    /// <summary>The full output for a batch, as a new array of tokens × OutputSize floats.</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    public float[] Forward(ReadOnlySpan<float> activations)
    {
        var y = new float[(long)Tokens(activations) * OutputSize];
        Forward(activations, y);
        return y;
    }

    /// <summary>Feature <paramref name="feature"/>'s decoder direction W_dec[feature, :] (OutputSize floats): what steering at the output site adds.</summary>
    /// <param name="feature">Feature index.</param>
    public float[] GetDecoderDirection(int feature)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)feature, (uint)FeatureCount, nameof(feature));
        var d = new float[OutputSize];
        SparseDecodeKernel.AddRow(_dec, feature, 1f, d);
        GC.KeepAlive(this);
        return d;
    }

    /// <summary>Releases the memory map and any converted copies.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var o in _owned)
        {
            o.Dispose();
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"JumpReLUTranscoder({InputHookName ?? "?"} → {OutputHookName ?? "?"}, d_in {InputSize}, d_sae {FeatureCount}, d_out {OutputSize}{(HasSkipConnection ? ", skip" : "")})";

    // y[t, :] += Σ_i x[t, i]·W_skip[i, :]; each W_skip row is used for the whole token block while it is in cache.
    private void AddSkip(ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        int dIn = InputSize, dOut = OutputSize;
        for (int i = 0; i < dIn; i++)
        {
            var row = new ReadOnlySpan<float>(_skip + ((long)i * dOut), dOut);
            for (int t = 0; t < tokens; t++)
            {
                var yt = y.Slice(t * dOut, dOut);
                TensorPrimitives.MultiplyAdd(row, x[(t * dIn) + i], yt, yt);
            }
        }
    }

    private int Tokens(ReadOnlySpan<float> x)
    {
        if (x.Length % InputSize != 0)
        {
            throw new ArgumentException($"activations have {x.Length} floats, not a multiple of InputSize {InputSize}", "activations");
        }

        return x.Length / InputSize;
    }

    private static void Check(int actual, long expected, string name)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} floats; needs {expected}", name);
        }
    }
}
