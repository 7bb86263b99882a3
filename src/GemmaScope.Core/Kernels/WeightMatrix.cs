using System.Globalization;
using GemmaScope.Formats;

namespace GemmaScope.Kernels;

/// <summary>
/// A row-major <c>[out, in]</c> weight matrix over memory the caller owns (typically a memory-mapped checkpoint), in
/// float32, bfloat16 or float16, as a checkpoint stores a linear layer's weight. Nothing is copied: the memory must stay
/// valid and unchanged while the matrix is used.
/// </summary>
public readonly struct WeightMatrix
{
    private WeightMatrix(nint address, int rows, int cols, TensorDType dtype)
    {
        Address = address;
        Rows = rows;
        Cols = cols;
        DType = dtype;
    }

    /// <summary>Address of element [0, 0].</summary>
    public nint Address { get; }

    /// <summary>Output features (rows, <c>out</c>).</summary>
    public int Rows { get; }

    /// <summary>Input features (columns, <c>in</c>): the length of the dot products.</summary>
    public int Cols { get; }

    /// <summary>Element type: <see cref="TensorDType.Float32"/>, <see cref="TensorDType.BFloat16"/> or <see cref="TensorDType.Float16"/>.</summary>
    public TensorDType DType { get; }

    /// <summary>Bytes the matrix spans: rows × cols × element size.</summary>
    public long ByteCount => (long)Rows * Cols * ElementSize(DType);

    /// <summary>Wraps <paramref name="rows"/> × <paramref name="cols"/> elements of <paramref name="dtype"/> at <paramref name="address"/>.</summary>
    /// <param name="address">Address of element [0, 0], aligned to the element size.</param>
    /// <param name="rows">Output features (<c>out</c>), at least 1.</param>
    /// <param name="cols">Input features (<c>in</c>), at least 1.</param>
    /// <param name="dtype">Float32, BFloat16 or Float16.</param>
    /// <exception cref="ArgumentException">The address is null or misaligned, a size is not positive, or the dtype is not supported.</exception>
    public static WeightMatrix Create(nint address, int rows, int cols, TensorDType dtype)
    {
        int size = dtype switch
        {
            TensorDType.Float32 or TensorDType.BFloat16 or TensorDType.Float16 => ElementSize(dtype),
            _ => throw new ArgumentException($"WeightMatrix: dtype {dtype} is not supported; expected Float32, BFloat16 or Float16.", nameof(dtype)),
        };
        if (address == 0)
        {
            throw new ArgumentException("WeightMatrix: address is null.", nameof(address));
        }

        if (address % size != 0)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"WeightMatrix: address 0x{address:X} is not aligned to the {size}-byte {dtype} element."),
                nameof(address));
        }

        if (rows < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), rows, "WeightMatrix: rows (out) must be at least 1.");
        }

        if (cols < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(cols), cols, "WeightMatrix: cols (in) must be at least 1.");
        }

        return new WeightMatrix(address, rows, cols, dtype);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"WeightMatrix [{Rows}, {Cols}] {DType} at 0x{Address:X}");

    private static int ElementSize(TensorDType dtype) => dtype == TensorDType.Float32 ? 4 : 2;
}
