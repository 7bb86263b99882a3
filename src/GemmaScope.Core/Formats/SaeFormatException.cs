namespace GemmaScope.Formats;

/// <summary>
/// Thrown when an SAE or transcoder weight file is malformed or disagrees with what a Gemma Scope SAE needs.
/// The message always names the file and, where one is involved, the tensor, the expected and the actual value.
/// </summary>
public sealed class SaeFormatException : GemmaScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The file being read.</param>
    /// <param name="tensor">The tensor or archive member involved, if any.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="expected">What was expected, if applicable.</param>
    /// <param name="actual">What was found, if applicable.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public SaeFormatException(string file, string? tensor, string problem, string? expected = null, string? actual = null, Exception? inner = null)
        : base(file, "tensor", tensor, problem, expected, actual, inner)
    {
    }

    /// <summary>The tensor or archive member involved, or null (the same as <see cref="GemmaScopeException.Field"/>).</summary>
    public string? Tensor => Field;
}
