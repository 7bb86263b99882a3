namespace GemmaScope;

/// <summary>
/// The base of every expected failure this library reports: a malformed SAE, checkpoint, tokenizer or ONNX file, or a
/// hub or Neuronpedia request that failed. Where known it carries the file, the field (tensor, archive member or
/// configuration field), the expected and the actual value; the message names them. Catch this type to handle all of
/// them; it is an <see cref="IOException"/> because each comes from reading a file or a server.
/// </summary>
public class GemmaScopeException : IOException
{
    /// <summary>Creates the exception from a finished message (requests, where no file or field applies).</summary>
    /// <param name="message">The whole message.</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    public GemmaScopeException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Problem = message;
    }

    /// <summary>Creates the exception; the message reads <c>file, field 'name': problem (expected …, actual …)</c>.</summary>
    /// <param name="file">The file being read.</param>
    /// <param name="field">The tensor, archive member or configuration field involved, if any.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="expected">What was expected, if applicable.</param>
    /// <param name="actual">What was found, if applicable.</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    public GemmaScopeException(string file, string? field, string problem, string? expected = null, string? actual = null, Exception? innerException = null)
        : this(file, "field", field, problem, expected, actual, innerException)
    {
    }

    /// <summary>
    /// Creates the exception with the word that names what <paramref name="field"/> is: the message reads
    /// <c>file, fieldKind 'field': …</c> ("tensor 'W_enc'", "field 'head_dim'"), or <c>file, field: …</c> when
    /// <paramref name="fieldKind"/> is empty (a location such as "line 3").
    /// </summary>
    /// <param name="file">The file being read.</param>
    /// <param name="fieldKind">What the field is: "tensor", "field", or empty for a location.</param>
    /// <param name="field">The tensor, field or location involved, if any.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="expected">What was expected, if applicable.</param>
    /// <param name="actual">What was found, if applicable.</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    protected GemmaScopeException(string file, string fieldKind, string? field, string problem, string? expected, string? actual, Exception? innerException)
        : base(Format(file, fieldKind, field, problem, expected, actual), innerException)
    {
        FilePath = file;
        Field = field;
        Problem = problem;
        Expected = expected;
        Actual = actual;
    }

    /// <summary>The file being read, or null when the failure is not about one file.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor, archive member or configuration field involved (or the place, such as a corpus line), or null.</summary>
    public string? Field { get; }

    /// <summary>What is wrong, without the file and field (the whole message for request failures).</summary>
    public string Problem { get; }

    /// <summary>What was expected, or null.</summary>
    public string? Expected { get; }

    /// <summary>What was found, or null.</summary>
    public string? Actual { get; }

    private static string Format(string file, string fieldKind, string? field, string problem, string? expected, string? actual)
    {
        // A hostile file can make any of these huge (a 400,000-character name or descr); the message quotes a prefix.
        field = Bound(field);
        expected = Bound(expected);
        actual = Bound(actual);
        var where = field is null ? file : fieldKind.Length == 0 ? $"{file}, {field}" : $"{file}, {fieldKind} '{field}'";
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
