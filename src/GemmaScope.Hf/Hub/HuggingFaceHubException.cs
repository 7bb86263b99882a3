using System.Net;

namespace GemmaScope.Hf;

/// <summary>
/// The hub refused or failed a request (unknown file, gated repository, broken download, SHA-256 mismatch),
/// or offline mode found the file missing from the cache. The message names the repository, the file and what to do.
/// </summary>
public sealed class HuggingFaceHubException : IOException
{
    /// <summary>Creates the exception.</summary>
    public HuggingFaceHubException(string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        StatusCode = statusCode;
    }

    /// <summary>The HTTP status the hub answered with, or null when the failure was not an HTTP status (offline, network, verification).</summary>
    public HttpStatusCode? StatusCode { get; }
}
