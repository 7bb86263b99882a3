namespace GemmaScope.Scan;

/// <summary>
/// A corpus file that cannot be read as a corpus. <see cref="GemmaScopeException.FilePath"/> is the file and
/// <see cref="GemmaScopeException.Field"/> the place in it ("line N" or "row N", 1-based), or null when the whole file
/// is at fault; the message reads <c>file, line N: problem</c>.
/// </summary>
public sealed class CorpusFormatException : GemmaScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The corpus file.</param>
    /// <param name="where">"line N" or "row N" (1-based), or empty when the whole file is at fault.</param>
    /// <param name="problem">What is wrong and, where it helps, how to fix it.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public CorpusFormatException(string file, string where, string problem, Exception? inner = null)
        : base(file, string.Empty, where.Length > 0 ? where : null, problem, null, null, inner)
    {
    }
}
