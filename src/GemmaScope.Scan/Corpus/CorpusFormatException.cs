namespace GemmaScope.Scan;

/// <summary>A corpus file that cannot be read as a corpus; the message names the file and the line or row.</summary>
public sealed class CorpusFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public CorpusFormatException(string file, string where, string problem, Exception? inner = null)
        : base($"{file}{(where.Length > 0 ? ", " + where : string.Empty)}: {problem}", inner)
    {
        File = file;
        Where = where;
    }

    /// <summary>Creates the exception with a plain message.</summary>
    public CorpusFormatException()
        : base("The corpus cannot be read.")
    {
        File = string.Empty;
        Where = string.Empty;
    }

    /// <summary>Creates the exception with a plain message.</summary>
    public CorpusFormatException(string message)
        : base(message)
    {
        File = string.Empty;
        Where = string.Empty;
    }

    /// <summary>Creates the exception with a plain message and a cause.</summary>
    public CorpusFormatException(string message, Exception inner)
        : base(message, inner)
    {
        File = string.Empty;
        Where = string.Empty;
    }

    /// <summary>The file.</summary>
    public string File { get; }

    /// <summary>"line N" or "row N" (1-based), or empty when the whole file is at fault.</summary>
    public string Where { get; }
}
