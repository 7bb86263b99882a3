namespace GemmaScope.Formats;

/// <summary>
/// A tensor as a file stores it: where its bytes are, their element type, byte order and layout.
/// Nothing is converted until the SAE asks for a working precision.
/// </summary>
internal sealed unsafe class RawTensor
{
    public required string File { get; init; }

    public required string Name { get; init; }

    public required TensorDType DType { get; init; }

    public required long[] Shape { get; init; }

    public bool BigEndian { get; init; }

    /// <summary>Makes the exception for a malformed shape (an SAE's or a checkpoint's).</summary>
    public FormatError Error { get; init; } = FormatErrors.Sae;

    /// <summary>Column-major (numpy fortran_order) storage of an array of rank 2 or more: the first index varies fastest.</summary>
    public bool FortranOrder { get; init; }

    private byte* _data;
    private bool _loaded;

    /// <summary>
    /// The first byte of the data; valid while the owning file or buffer lives. Where <see cref="Loader"/> is set, the
    /// first read runs it (inflating or checksumming the member), so shapes can be checked before any of that work.
    /// Not thread-safe until read once; loaders read it on one thread.
    /// </summary>
    public byte* Data
    {
        get
        {
            if (!_loaded && Loader is not null)
            {
                _data = (byte*)Loader();
                _loaded = true;
            }

            return _data;
        }

        init
        {
            _data = value;
            _loaded = true;
        }
    }

    /// <summary>Produces <see cref="Data"/> on first use (a deflated member is inflated, a stored one checksummed), or null.</summary>
    public Func<nint>? Loader { get; init; }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
            {
                if (d < 0 || (d != 0 && n > long.MaxValue / 8 / d))
                {
                    throw Error(File, Name, "shape is negative or too large to address", "a shape whose byte size fits in 63 bits", ShapeText);
                }

                n *= d;
            }

            return n;
        }
    }

    public long ByteCount => ElementCount * DType.Size();

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    public string DTypeText => (BigEndian ? "big-endian " : "") + DType switch
    {
        TensorDType.Float32 => "float32",
        TensorDType.Float16 => "float16",
        TensorDType.BFloat16 => "bfloat16",
        TensorDType.Float64 => "float64",
        _ => DType.ToString(),
    } + (FortranOrder ? " (Fortran order)" : "");
}
