namespace GemmaScope.Formats;

/// <summary>
/// Thrown when a weight file is malformed or disagrees with what a Gemma Scope SAE needs.
/// The message always names the file and, where one is involved, the tensor, the expected and the actual value.
/// </summary>
public sealed class SaeFormatException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The file being read.</param>
    /// <param name="tensor">The tensor or archive member involved, if any.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="expected">What was expected, if applicable.</param>
    /// <param name="actual">What was found, if applicable.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public SaeFormatException(string file, string? tensor, string problem, string? expected = null, string? actual = null, Exception? inner = null)
        : base(Format(file, tensor, problem, expected, actual), inner)
    {
        FilePath = file;
        Tensor = tensor;
        Expected = expected;
        Actual = actual;
    }

    /// <summary>The file being read.</summary>
    public string FilePath { get; }

    /// <summary>The tensor or archive member involved, or null.</summary>
    public string? Tensor { get; }

    /// <summary>What was expected, or null.</summary>
    public string? Expected { get; }

    /// <summary>What was found, or null.</summary>
    public string? Actual { get; }

    private static string Format(string file, string? tensor, string problem, string? expected, string? actual)
    {
        // A hostile file can make any of these huge (a 400,000-character name or descr); the message quotes a prefix.
        tensor = Bound(tensor);
        expected = Bound(expected);
        actual = Bound(actual);
        var where = tensor is null ? file : $"{file}, tensor '{tensor}'";
        var detail = (expected, actual) switch
        {
            (null, null) => "",
            (not null, null) => $" (expected {expected})",
            (null, not null) => $" (actual {actual})",
            _ => $" (expected {expected}, actual {actual})",
        };
        return $"{where}: {problem}{detail}";
    }

    private static string? Bound(string? s) => s is { Length: > 300 } ? $"{s[..240]}… ({s.Length} characters)" : s;
}
