namespace GemmaScope.Formats;

/// <summary>Where one tensor of a safetensors file lies, as its (validated) header states it.</summary>
/// <param name="Name">The tensor's name as the file stores it.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first (row-major data).</param>
/// <param name="File">Full path of the file holding the data.</param>
/// <param name="DataOffset">Byte offset of the first element from the start of the file (8 + header length + begin).</param>
/// <param name="ByteCount">Bytes of data: the product of <paramref name="Shape"/> times the element size.</param>
public sealed record SafeTensorInfo(string Name, TensorDType DType, IReadOnlyList<long> Shape, string File, long DataOffset, long ByteCount)
{
    /// <summary>The number of elements: the product of <see cref="Shape"/>.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
            {
                n *= d;
            }

            return n;
        }
    }
}
