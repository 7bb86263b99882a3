namespace GemmaScope.Tokenizers;

/// <summary>
/// Thrown when a file is not a tokenizer this library can reproduce exactly: malformed or truncated
/// JSON or protobuf, a missing field, or a model or option it does not implement. The message names
/// the file and what is wrong.
/// </summary>
public sealed class TokenizerFormatException : GemmaScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">The file (or stream name) that was read.</param>
    /// <param name="problem">What is wrong with it.</param>
    /// <param name="inner">The underlying parser error, if any.</param>
    public TokenizerFormatException(string source, string problem, Exception? inner = null)
        : base(source, null, problem, null, null, inner)
    {
    }
}
