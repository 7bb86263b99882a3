namespace GemmaScope;

/// <summary>The precision in which an SAE keeps its two weight matrices.</summary>
public enum SaePrecision
{
    /// <summary>float32: exact to the released weights; little-endian float32 files are memory-mapped, not copied.</summary>
    Float32,

    /// <summary>
    /// bfloat16 (round to nearest even from float32): half the memory and, at few tokens, about half the time,
    /// since encoding one token streams the whole encoder matrix. Biases and thresholds stay float32; arithmetic is float32.
    /// </summary>
    BFloat16,
}

/// <summary>How much of a weight file to check on load.</summary>
public enum SaeValidation
{
    /// <summary>Structure, shapes and dtypes, and every value finite (a vectorised scan that touches every page once).</summary>
    Full,

    /// <summary>Structure, shapes and dtypes, and finite biases and thresholds; matrices are not scanned, so a mapped file stays cold until used.</summary>
    StructureOnly,
}

/// <summary>Options for <see cref="JumpReLUSae.Load(string, SaeLoadOptions?)"/>.</summary>
public sealed record SaeLoadOptions
{
    /// <summary>The defaults: float32, full validation, all cores.</summary>
    public static SaeLoadOptions Default { get; } = new();

    /// <summary>Working precision of W_enc and W_dec. Default <see cref="SaePrecision.Float32"/>.</summary>
    public SaePrecision Precision { get; init; } = SaePrecision.Float32;

    /// <summary>What to check on load. Default <see cref="SaeValidation.Full"/>.</summary>
    public SaeValidation Validation { get; init; } = SaeValidation.Full;

    /// <summary>Most threads one Encode/Decode call may use; default <see cref="Environment.ProcessorCount"/>.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Treat npy arrays of dtype uint16 ('&lt;u2') as bfloat16 bit patterns. Off by default: reading integers as weights is
    /// never done silently. (bfloat16 written through ml_dtypes appears as 'V2' and is always read as bfloat16.)
    /// </summary>
    public bool UInt16AsBFloat16 { get; init; }

    /// <summary>
    /// Fold an input scale into the weights on load: W_enc is divided by it and W_dec multiplied by it, so the SAE reads
    /// activations that are <c>scale</c> times those it was trained on. Gemma Scope's embedding SAEs were trained on the
    /// unscaled embedding; to apply them to Gemma's scaled embedding use √d_model (what SAELens does). Default 1 (none).
    /// A value other than 1 makes a copy of the matrices.
    /// </summary>
    public float InputScale { get; init; } = 1f;

    /// <summary>
    /// Exact screened encode: at load, build an int8 copy of W_enc (screened with AVX-VNNI dot products) and a transposed
    /// fp32 copy; Encode and EncodeSparse then compute in fp32 only the features whose proven error bound lets them
    /// reach their threshold, with the same summation as the dense kernel, so the results are the dense fp32 kernel's.
    /// Costs 1.25 × the fp32 W_enc in memory (5 bytes per weight; 180 MB for 2304 × 16384) and a build pass at load
    /// (about 1 s for 2304 × 16384 on one Zen 5 core). Float32 only, d_in ≤ 32768.
    /// On CPUs without AVX-VNNI the dense kernel is used (same results). Default false.
    /// </summary>
    public bool Screening { get; init; }

    /// <summary>
    /// Keep a second, panel-major copy of W_enc, built once on first use, so that every encode reads W_enc as one
    /// sequential stream per thread instead of repacking it per call (what makes 2–256 token batches fast). Not built
    /// at load, so <c>Load</c> stays fast: the first Encode of 2+ tokens builds it and waits (about one pass over
    /// W_enc); a 1-token Encode starts the build on a thread-pool thread and meanwhile streams W_enc in place. Both
    /// paths sum in the same order, so a token's features are the same bits before, during and after the build.
    /// Cost: the size of W_enc again in the working precision (4·d_in·d_sae bytes fp32, 2·d_in·d_sae bf16: 151 / 75 MB
    /// for 2304 × 16384, 1.9 / 0.94 GB for 3584 × 131072; see <see cref="JumpReLUSae.PackedEncoderBytes"/>).
    /// Default true; false keeps no copy and packs per call above 8 (fp32) / 16 (bf16) tokens.
    /// </summary>
    public bool PackEncoder { get; init; } = true;

    /// <summary>Configuration to use when the file carries none (npz files carry none); fields present in the file win.</summary>
    public SaeConfig? Config { get; init; }
}
