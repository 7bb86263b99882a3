using GemmaScope.Formats;
using GemmaScope.Kernels;

namespace GemmaScope;

/// <summary>
/// A Gemma Scope JumpReLU sparse autoencoder, and the base of the SAE family: a <see cref="JumpReLUTranscoder"/> is an
/// SAE that writes another site than it reads (and may add a skip term), as in SAELens.
/// <para>pre = x·W_enc + b_enc; f = pre where pre &gt; threshold and pre &gt; 0, else 0; x̂ = f·W_dec + b_dec.</para>
/// <para>
/// Immutable once loaded and safe to use from many threads at once. Float32 little-endian weights are memory-mapped from
/// the file, not copied; <see cref="Dispose"/> releases the map, after which every call throws
/// <see cref="ObjectDisposedException"/> (disposing while another thread is still encoding is a caller error).
/// Batches are row-major: <c>x.Length = tokens × InputSize</c>, <c>f.Length = tokens × FeatureCount</c>,
/// <c>x̂.Length = tokens × OutputSize</c>. Only this library derives from this class.
/// </para>
/// </summary>
public unsafe partial class JumpReLUSae : IDisposable
{
    private readonly List<IDisposable> _owned;
    private readonly SaeWeights _w;
    private readonly SaeWeights _dw; // the decoder's view: DIn is d_out
    private readonly float* _skip; // transcoders: W_skip [d_in, d_out], or null
    private volatile bool _disposed;
    private int _disposeCount;

    private protected JumpReLUSae(in Parts parts, SaeLoadOptions options)
    {
        _w = parts.Encoder;
        _dw = parts.Decoder;
        _skip = parts.Skip;
        Config = parts.Config;
        Precision = options.Precision;
        MaxDegreeOfParallelism = Math.Max(1, options.MaxDegreeOfParallelism);
        SourcePath = parts.File == ArraysSource ? null : parts.File;
        _owned = parts.Owned;
    }

    /// <summary>Input width d_in (d_model for residual and MLP SAEs, heads × head_dim for attention SAEs).</summary>
    public int InputSize => _w.DIn;

    /// <summary>Number of latents d_sae.</summary>
    public int FeatureCount => _w.DSae;

    /// <summary>Output width d_out: what Decode and Reconstruct write. <see cref="InputSize"/> for an SAE; a transcoder's output site may differ.</summary>
    public int OutputSize => _dw.DIn;

    /// <summary>What the SAE reads and where it came from, as far as known.</summary>
    public SaeConfig Config { get; }

    /// <summary>Working precision of the weight matrices.</summary>
    public SaePrecision Precision { get; }

    /// <summary>Most threads one call uses.</summary>
    public int MaxDegreeOfParallelism { get; }

    /// <summary>Bytes of weights this SAE holds in its own memory (converted, inflated or in-memory copies).</summary>
    public long CopiedBytes => _owned.OfType<NativeBuffer>().Sum(b => b.Bytes);

    /// <summary>Bytes of weights used in place from the file's memory map (zero pages are read only when touched).</summary>
    public long MappedBytes => WeightBytes - CopiedBytes;

    /// <summary>
    /// Bytes of the panel-major encoder copy (<see cref="SaeLoadOptions.PackEncoder"/>): 0 until the first Encode
    /// builds it, then about the size of W_enc in <see cref="Precision"/>. Not part of <see cref="CopiedBytes"/>.
    /// </summary>
    public long PackedEncoderBytes => _w.Packed?.Bytes ?? 0;

    private long WeightBytes => ((long)(_w.DIn + _dw.DIn) * _w.DSae * (_w.IsBFloat16 ? 2 : 4)) + (((2L * _w.DSae) + _dw.DIn) * 4)
        + (_skip == null ? 0 : (long)_w.DIn * _dw.DIn * 4);

    /// <summary>The file the weights came from, or null for in-memory SAEs.</summary>
    public string? SourcePath { get; }

    internal SaeWeights Weights
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _w;
        }
    }

    /// <summary>The decoder's view of the weights (DIn is d_out).</summary>
    internal SaeWeights DecoderWeights
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _dw;
        }
    }

    /// <summary>W_skip [d_in, d_out] of an affine transcoder, or null.</summary>
    private protected float* Skip => _skip;

    /// <summary>What a load produced, handed to the constructor of the SAE or transcoder.</summary>
    internal readonly struct Parts
    {
        public required string File { get; init; }

        public required SaeWeights Encoder { get; init; }

        public required SaeWeights Decoder { get; init; }

        public float* Skip { get; init; }

        public required SaeConfig Config { get; init; }

        public required List<IDisposable> Owned { get; init; }
    }

    private const string ArraysSource = "<arrays>";

    /// <summary>
    /// Loads an SAE from a Gemma Scope <c>params.npz</c>, a <c>.safetensors</c> file (SAELens's <c>sae_weights.safetensors</c>,
    /// Gemma Scope 2's <c>params.safetensors</c>), or a folder holding one of them (and optionally SAELens's <c>cfg.json</c>).
    /// </summary>
    /// <param name="path">File or folder.</param>
    /// <param name="options">Precision, validation and threading; null for <see cref="SaeLoadOptions.Default"/>.</param>
    /// <exception cref="SaeFormatException">The file is malformed or does not hold a valid JumpReLU SAE.</exception>
    /// <exception cref="FileNotFoundException">Nothing loadable at <paramref name="path"/>.</exception>
    public static JumpReLUSae Load(string path, SaeLoadOptions? options = null) => LoadKind(path, options, transcoder: false);

    /// <summary>
    /// Loads whichever the files hold: a <see cref="JumpReLUTranscoder"/> when they say it is one (Gemma Scope 2's
    /// <c>config.json</c> type <c>transcoder</c>, or a skip connection <c>affine_skip_connection</c> / <c>W_skip</c>), else an
    /// SAE. Exactly the files <see cref="Load"/> refuses as transcoders load as transcoders (as with
    /// <see cref="JumpReLUTranscoder.Load"/>); the rest load as with <see cref="Load"/>. Test the result with
    /// <c>is JumpReLUTranscoder</c> where the kind matters.
    /// </summary>
    /// <remarks>
    /// Gemma Scope's <c>params.npz</c> transcoders without a skip connection carry nothing that tells them from an SAE: they
    /// load as SAEs here. Load them with <see cref="JumpReLUTranscoder.Load"/> (or through the hub catalog, which knows).
    /// </remarks>
    /// <param name="path">File or folder.</param>
    /// <param name="options">Precision, validation, threading and sites; null for <see cref="SaeLoadOptions.Default"/>. A transcoder takes <see cref="SaeLoadOptions.InputScale"/> 1.</param>
    /// <returns>The SAE, or a <see cref="JumpReLUTranscoder"/>; dispose it to release its memory map.</returns>
    /// <exception cref="SaeFormatException">The file is malformed or holds neither a valid JumpReLU SAE nor a valid transcoder.</exception>
    /// <exception cref="FileNotFoundException">Nothing loadable at <paramref name="path"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The files hold a transcoder and <see cref="SaeLoadOptions.InputScale"/> is not 1.</exception>
    public static JumpReLUSae LoadAny(string path, SaeLoadOptions? options = null) => LoadKind(path, options, transcoder: null);

    /// <summary>
    /// The one load path of the family: open, decide or check the kind (<paramref name="transcoder"/> null: whichever the files
    /// hold), validate, build, screen; on failure free what was mapped.
    /// </summary>
    private protected static JumpReLUSae LoadKind(string path, SaeLoadOptions? options, bool? transcoder)
    {
        options ??= SaeLoadOptions.Default;
        if (transcoder == true)
        {
            CheckTranscoderOptions(options);
        }

        ArgumentException.ThrowIfNullOrEmpty(path);

        var owned = new List<IDisposable>();
        try
        {
            var (file, tensors, fileConfig, scope2) = OpenTensors(path, options, owned);
            bool isTranscoder = transcoder ?? HoldsTranscoder(tensors, scope2);
            if (transcoder is null && isTranscoder)
            {
                CheckTranscoderOptions(options);
            }

            CheckKind(file, tensors, scope2, isTranscoder);
            var parts = Build(file, tensors, fileConfig, options, owned, isTranscoder);
            var sae = isTranscoder ? new JumpReLUTranscoder(parts, options) : new JumpReLUSae(parts, options);
            sae.WithScreening(options);
            return sae;
        }
        catch
        {
            Free(owned);
            throw;
        }
    }

    private static void Free(List<IDisposable> owned)
    {
        foreach (var o in owned)
        {
            o.Dispose();
        }
    }

    private static void CheckTranscoderOptions(SaeLoadOptions options)
    {
        if (options.InputScale != 1f)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.InputScale, "InputScale applies to embedding SAEs only; transcoders take 1");
        }
    }

    // What makes files a transcoder's: Gemma Scope 2's config.json says so, or a skip connection is present.
    private static bool HoldsTranscoder(Dictionary<string, RawTensor> tensors, Scope2Config? scope2) =>
        scope2 is { IsTranscoder: true } || tensors.ContainsKey("affine_skip_connection") || tensors.ContainsKey("W_skip");

    // Loading one kind as the other would read one site and write another (or drop x·W_skip) without a word.
    private static void CheckKind(string file, Dictionary<string, RawTensor> tensors, Scope2Config? scope2, bool transcoder)
    {
        if (transcoder)
        {
            if (scope2 is { IsTranscoder: false })
            {
                throw new SaeFormatException(file, "config.json type", "this is an SAE, not a transcoder; load it with JumpReLUSae.Load", "transcoder", "sae");
            }

            return;
        }

        bool skip = tensors.ContainsKey("affine_skip_connection") || tensors.ContainsKey("W_skip");
        if (HoldsTranscoder(tensors, scope2))
        {
            throw new SaeFormatException(file, tensors.ContainsKey("affine_skip_connection") ? "affine_skip_connection" : tensors.ContainsKey("W_skip") ? "W_skip" : "config.json type",
                "this is a transcoder (it reads the MLP's input and writes its output" + (scope2?.AffineConnection == true || skip ? ", adding x·W_skip" : "") + "); load it with JumpReLUTranscoder.Load",
                "an SAE (no skip connection, type sae)", "a transcoder");
        }
    }

    // What a loader reads from an npz: the SAE arrays plus a skip connection under either name, so that one is never dropped unseen.
    private static readonly IReadOnlySet<string> WeightArrays = new HashSet<string>(NpzReader.SaeArrays, StringComparer.Ordinal) { "W_skip" };

    /// <summary>Maps the weight file under <paramref name="path"/> and reads its tensors and any configuration beside or inside it.</summary>
    private static (string File, Dictionary<string, RawTensor> Tensors, SaeConfig? Config, Scope2Config? Scope2) OpenTensors(
        string path, SaeLoadOptions options, List<IDisposable> owned)
    {
        var file = ResolveWeightFile(path, out var cfgPath);
        Scope2Config? scope2 = cfgPath is not null && Scope2Config.IsScope2ConfigPath(cfgPath) ? Scope2Config.Read(cfgPath) : null;
        SaeConfig? fileConfig = scope2 is not null ? scope2.ToSaeConfig()
            : cfgPath is null ? null : SaeConfig.FromJson(File.ReadAllText(cfgPath), cfgPath);
        var map = MappedFile.Open(file);
        owned.Add(map);
        Dictionary<string, RawTensor> tensors;
        if (NpzReader.LooksLikeZip(map))
        {
            tensors = NpzReader.ReadAll(map, options.UInt16AsBFloat16, WeightArrays, owned);
        }
        else if (SafeTensors.LooksLikeSafeTensors(map))
        {
            (tensors, var meta) = SafeTensors.ReadAll(map);
            if (fileConfig is null && meta.TryGetValue("cfg", out var cfgJson))
            {
                fileConfig = SaeConfig.FromJson(cfgJson, file + " (__metadata__.cfg)");
            }
        }
        else
        {
            throw new SaeFormatException(file, null, "neither a zip/npz archive nor a safetensors file",
                "zip signature 50 4B 03 04 or an 8-byte header length followed by '{'",
                map.Length >= 4 ? Convert.ToHexString(map.Slice(0, Math.Min(8, map.Length))) : $"{map.Length} bytes");
        }

        if (scope2 is not null)
        {
            // The config's width is d_sae; a file that disagrees is not the SAE the config describes.
            var enc = tensors.GetValueOrDefault("w_enc") ?? tensors.GetValueOrDefault("W_enc");
            if (enc is { Shape.Length: 2 } && enc.Shape[1] != scope2.Width)
            {
                throw new SaeFormatException(file, enc.Name, "d_sae disagrees with config.json width", $"[d_in, {scope2.Width}]", enc.ShapeText);
            }

            bool hasSkip = tensors.ContainsKey("affine_skip_connection");
            if (hasSkip != scope2.AffineConnection)
            {
                throw new SaeFormatException(file, "affine_skip_connection", $"config.json says affine_connection {(scope2.AffineConnection ? "true" : "false")}",
                    scope2.AffineConnection ? "present" : "absent", hasSkip ? "present" : "absent");
            }
        }

        return (file, tensors, fileConfig, scope2);
    }

    /// <summary>
    /// Builds an SAE from arrays already in memory (copied), row-major: W_enc [inputSize, featureCount], W_dec [featureCount, inputSize].
    /// </summary>
    /// <param name="wEnc">Encoder matrix, inputSize × featureCount.</param>
    /// <param name="wDec">Decoder matrix, featureCount × inputSize.</param>
    /// <param name="bEnc">Encoder bias, featureCount.</param>
    /// <param name="bDec">Decoder bias, inputSize.</param>
    /// <param name="threshold">JumpReLU thresholds, featureCount.</param>
    /// <param name="inputSize">d_in.</param>
    /// <param name="options">Precision, validation and threading.</param>
    public static JumpReLUSae FromArrays(ReadOnlySpan<float> wEnc, ReadOnlySpan<float> wDec, ReadOnlySpan<float> bEnc, ReadOnlySpan<float> bDec,
        ReadOnlySpan<float> threshold, int inputSize, SaeLoadOptions? options = null)
    {
        options ??= SaeLoadOptions.Default;
        ArgumentOutOfRangeException.ThrowIfLessThan(inputSize, 1);
        int featureCount = bEnc.Length;
        const string src = ArraysSource;
        var owned = new List<IDisposable>();

        // bf16 converts the matrices into copies of its own, so their float32 staging copies are freed after Build.
        var staging = options.Precision == SaePrecision.BFloat16 ? new List<IDisposable>() : owned;
        var tensors = new Dictionary<string, RawTensor>
        {
            ["W_enc"] = Copy(src, "W_enc", wEnc, wEnc.Length % inputSize == 0 ? [inputSize, wEnc.Length / inputSize] : [wEnc.Length], staging),
            ["W_dec"] = Copy(src, "W_dec", wDec, wDec.Length % inputSize == 0 ? [wDec.Length / inputSize, inputSize] : [wDec.Length], staging),
            ["b_enc"] = Copy(src, "b_enc", bEnc, [featureCount], owned),
            ["b_dec"] = Copy(src, "b_dec", bDec, [bDec.Length], owned),
            ["threshold"] = Copy(src, "threshold", threshold, [threshold.Length], owned),
        };
        try
        {
            return new JumpReLUSae(Build(src, tensors, null, options, owned, transcoder: false), options).WithScreening(options);
        }
        catch
        {
            Free(owned);
            throw;
        }
        finally
        {
            if (!ReferenceEquals(staging, owned))
            {
                Free(staging);
            }
        }
    }

    private static RawTensor Copy(string file, string name, ReadOnlySpan<float> data, long[] shape, List<IDisposable> owned)
    {
        var buf = new NativeBuffer((long)data.Length * 4);
        owned.Add(buf);
        data.CopyTo(new Span<float>(buf.Pointer, data.Length));
        return new RawTensor { File = file, Name = name, DType = TensorDType.Float32, Shape = shape, Data = (byte*)buf.Pointer };
    }

    private static string ResolveWeightFile(string path, out string? cfgPath)
    {
        cfgPath = null;
        if (Directory.Exists(path))
        {
            string[] names = ["params.npz", "sae_weights.safetensors", "params.safetensors"];
            var found = names.Select(n => Path.Combine(path, n)).Where(File.Exists).ToList();
            if (found.Count == 0)
            {
                throw new FileNotFoundException($"{Path.GetFullPath(path)}: folder holds none of {string.Join(", ", names)}");
            }

            if (found.Count > 1)
            {
                throw new SaeFormatException(Path.GetFullPath(path), null, "folder holds more than one weight file; pass the file itself", "one of " + string.Join(", ", names), string.Join(", ", found.Select(Path.GetFileName)));
            }

            cfgPath = ConfigBeside(found[0]);
            return found[0];
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{Path.GetFullPath(path)}: no such file or folder", path);
        }

        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            cfgPath = ConfigBeside(path);
        }

        return path;
    }

    // SAELens writes cfg.json beside sae_weights.safetensors; Gemma Scope 2 writes config.json beside params.safetensors.
    // Without one, the sites come from SaeLoadOptions.Config (a skip connection is still recognised by its tensor).
    private static string? ConfigBeside(string weights)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(weights))!;
        if (string.Equals(Path.GetFileName(weights), "params.safetensors", StringComparison.Ordinal))
        {
            var gs2 = Path.Combine(dir, "config.json");
            if (File.Exists(gs2))
            {
                return gs2;
            }
        }

        var cfg = Path.Combine(dir, "cfg.json");
        return File.Exists(cfg) ? cfg : null;
    }

    private static RawTensor Get(string file, Dictionary<string, RawTensor> tensors, string name, string? alias)
    {
        bool a = tensors.TryGetValue(name, out var t);
        RawTensor? u = null;
        bool b = alias is not null && tensors.TryGetValue(alias, out u);
        if (a && b)
        {
            throw new SaeFormatException(file, name, $"both '{name}' and '{alias}' are present; which one is meant is ambiguous");
        }

        return (a ? t : b ? u : null) ?? throw new SaeFormatException(file, name, "required tensor is missing",
            alias is null ? name : $"{name} (or {alias})", tensors.Count == 0 ? "no tensors" : string.Join(", ", tensors.Keys.Order(StringComparer.Ordinal)));
    }

    private static void CheckShape(RawTensor t, params long[] expected)
    {
        if (!t.Shape.AsSpan().SequenceEqual(expected))
        {
            throw new SaeFormatException(t.File, t.Name, "shape disagrees with the other tensors", "[" + string.Join(", ", expected) + "]", t.ShapeText);
        }
    }

    /// <summary>
    /// Validates the tensors and builds the kernels' views: W_enc [d_in, d_sae], W_dec [d_sae, d_out], b_enc and threshold
    /// [d_sae], b_dec [d_out], and for a transcoder an optional W_skip [d_in, d_out] (an SAE has d_out = d_in, no skip).
    /// </summary>
    private static Parts Build(string file, Dictionary<string, RawTensor> tensors, SaeConfig? fileConfig, SaeLoadOptions options, List<IDisposable> owned, bool transcoder)
    {
        var wEnc = Get(file, tensors, "W_enc", "w_enc");
        var wDec = Get(file, tensors, "W_dec", "w_dec");
        var bEnc = Get(file, tensors, "b_enc", null);
        var bDec = Get(file, tensors, "b_dec", null);
        var thr = Get(file, tensors, "threshold", null);
        var skip = transcoder ? SkipTensor(file, tensors) : null;
        if (wEnc.Shape.Length != 2)
        {
            throw new SaeFormatException(file, wEnc.Name, "must be a matrix [d_in, d_sae]", "2 dimensions", wEnc.ShapeText);
        }

        long dIn = wEnc.Shape[0], dSae = wEnc.Shape[1];
        if (dIn < 1 || dSae < 1 || dIn > int.MaxValue || dSae > int.MaxValue)
        {
            throw new SaeFormatException(file, wEnc.Name, "dimensions out of range", "1 ≤ d_in, d_sae ≤ 2^31 - 1", wEnc.ShapeText);
        }

        long dOut = dIn;
        if (transcoder)
        {
            // A transcoder's output width comes from W_dec; an SAE's must equal d_in (checked with the shapes below).
            if (wDec.Shape.Length != 2)
            {
                throw new SaeFormatException(file, wDec.Name, "must be a matrix [d_sae, d_out]", "2 dimensions", wDec.ShapeText);
            }

            dOut = wDec.Shape[1];
            if (dOut < 1 || dOut > int.MaxValue)
            {
                throw new SaeFormatException(file, wDec.Name, "dimensions out of range", "1 ≤ d_out ≤ 2^31 - 1", wDec.ShapeText);
            }
        }

        CheckShape(wDec, dSae, dOut);
        CheckShape(bEnc, dSae);
        CheckShape(bDec, dOut);
        CheckShape(thr, dSae);
        if (skip is not null)
        {
            CheckShape(skip, dIn, dOut);
        }

        if (fileConfig is not null)
        {
            if (fileConfig.InputSize != 0 && fileConfig.InputSize != dIn)
            {
                throw new SaeFormatException(file, "cfg.json d_in", "configuration disagrees with W_enc", dIn.ToString(), fileConfig.InputSize.ToString());
            }

            if (fileConfig.FeatureCount != 0 && fileConfig.FeatureCount != dSae)
            {
                throw new SaeFormatException(file, "cfg.json d_sae", "configuration disagrees with W_enc", dSae.ToString(), fileConfig.FeatureCount.ToString());
            }

            if (!string.Equals(fileConfig.Architecture, "jumprelu", StringComparison.OrdinalIgnoreCase))
            {
                throw new SaeFormatException(file, "cfg.json architecture", $"only JumpReLU {(transcoder ? "transcoders" : "SAEs")} are supported", "jumprelu", fileConfig.Architecture);
            }

            if (fileConfig.ApplyBDecToInput || !string.Equals(fileConfig.NormalizeActivations, "none", StringComparison.OrdinalIgnoreCase))
            {
                throw new SaeFormatException(file, "cfg.json", "Gemma Scope SAEs read raw activations; this configuration asks for input preprocessing that is not supported",
                    "apply_b_dec_to_input false, normalize_activations none", $"apply_b_dec_to_input {fileConfig.ApplyBDecToInput}, normalize_activations {fileConfig.NormalizeActivations}");
            }
        }

        if (!(options.InputScale > 0 && float.IsFinite(options.InputScale)))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.InputScale, "InputScale must be finite and > 0");
        }

        var config = (options.Config ?? new SaeConfig()).MergedWith(fileConfig) with { InputSize = (int)dIn, FeatureCount = (int)dSae };
        bool bf16 = options.Precision == SaePrecision.BFloat16;
        float scale = options.InputScale;
        var w = new SaeWeights
        {
            DIn = (int)dIn,
            DSae = (int)dSae,
            WEnc = bf16 ? null : TensorConvert.AsFloat32(wEnc, 1f / scale, owned),
            WDec = bf16 ? null : TensorConvert.AsFloat32(wDec, scale, owned),
            WEncBf16 = bf16 ? TensorConvert.AsBFloat16(wEnc, 1f / scale, owned) : null,
            WDecBf16 = bf16 ? TensorConvert.AsBFloat16(wDec, scale, owned) : null,
            BEnc = TensorConvert.AsFloat32(bEnc, 1f, owned),
            BDec = TensorConvert.AsFloat32(bDec, 1f, owned),
            Threshold = TensorConvert.AsFloat32(thr, 1f, owned),
        };
        float* sk = skip is null ? null : TensorConvert.AsFloat32(skip, 1f, owned);
        if (options.PackEncoder)
        {
            // First in the list, so Dispose frees it (waiting for a background build) before the weights it reads.
            var packed = new PackedEncoderCache(owned);
            owned.Insert(0, packed);
            w = w with { Packed = packed };
        }

        CheckFinite(file, "b_enc", w.BEnc, dSae);
        CheckFinite(file, "b_dec", w.BDec, dOut);
        CheckFinite(file, "threshold", w.Threshold, dSae);
        if (options.Validation == SaeValidation.Full)
        {
            if (bf16)
            {
                CheckFinite(file, wEnc.Name, w.WEncBf16, dIn, dSae);
                CheckFinite(file, wDec.Name, w.WDecBf16, dSae, dOut);
            }
            else
            {
                CheckFinite(file, wEnc.Name, w.WEnc, dIn, dSae);
                CheckFinite(file, wDec.Name, w.WDec, dSae, dOut);
            }

            if (sk != null)
            {
                CheckFinite(file, skip!.Name, sk, dIn, dOut);
            }
        }

        return new Parts { File = file, Encoder = w, Decoder = w with { DIn = (int)dOut }, Skip = sk, Config = config, Owned = owned };
    }

    // Gemma Scope 2 writes affine_skip_connection; W_skip is accepted too, but not both.
    private static RawTensor? SkipTensor(string file, Dictionary<string, RawTensor> tensors)
    {
        bool a = tensors.TryGetValue("affine_skip_connection", out var skip);
        if (tensors.TryGetValue("W_skip", out var skip2))
        {
            if (a)
            {
                throw new SaeFormatException(file, "W_skip", "both 'W_skip' and 'affine_skip_connection' are present; which one is meant is ambiguous");
            }

            skip = skip2;
        }

        return skip;
    }

    private static void CheckFinite(string file, string name, float* p, long n, long cols = 0)
    {
        long i = TensorConvert.FindNonFinite(p, cols == 0 ? n : n * cols);
        if (i >= 0)
        {
            throw new SaeFormatException(file, name, "holds a non-finite value", "finite values",
                cols == 0 ? $"{p[i]} at [{i}]" : $"{p[i]} at [{i / cols}, {i % cols}]");
        }
    }

    private static void CheckFinite(string file, string name, ushort* p, long rows, long cols)
    {
        long i = TensorConvert.FindNonFinite(p, rows * cols);
        if (i >= 0)
        {
            throw new SaeFormatException(file, name, "holds a non-finite value", "finite values", $"{BFloat16.ToSingle(p[i])} at [{i / cols}, {i % cols}]");
        }
    }

    /// <summary>Releases the memory map and any converted copies.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeCount, 1) != 0)
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
        $"JumpReLUSae(d_in={InputSize}, d_sae={FeatureCount}, {Precision}{(Config.HookName is null ? "" : ", " + Config.HookName)}{(SourcePath is null ? "" : ", " + SourcePath)})";

    private int Tokens(ReadOnlySpan<float> x, string name)
    {
        if (x.Length % InputSize != 0)
        {
            throw new ArgumentException($"{name} has {x.Length} floats, not a multiple of InputSize {InputSize}", name);
        }

        return x.Length / InputSize;
    }

    private static void CheckLength(int actual, long expected, string name, string what)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} floats; {what} needs {expected}", name);
        }
    }
}
