using System.Net;

namespace GemmaScope.Hf;

/// <summary>
/// The hub refused or failed a request (unknown file, gated repository, broken download, SHA-256 mismatch),
/// or offline mode found the file missing from the cache. The message names the repository, the file and what to do.
/// </summary>
/// <param name="message">What failed.</param>
/// <param name="statusCode">The HTTP status the hub answered with, or null.</param>
/// <param name="innerException">The underlying exception, if any.</param>
public sealed class HuggingFaceHubException(string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
    : ServiceException(message, statusCode, innerException);
