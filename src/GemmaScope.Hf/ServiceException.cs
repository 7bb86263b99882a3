using System.Net;

namespace GemmaScope.Hf;

/// <summary>
/// A request to a remote service failed: <see cref="HuggingFaceHubException"/> for the Hugging Face hub,
/// <see cref="NeuronpediaException"/> for Neuronpedia. Catch this type to handle both.
/// </summary>
public abstract class ServiceException : GemmaScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed, naming the repository, file or address and what to do.</param>
    /// <param name="statusCode">The HTTP status of the failed request, or null when the failure was not an HTTP status.</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    protected ServiceException(string message, HttpStatusCode? statusCode, Exception? innerException)
        : base(message, innerException)
    {
        StatusCode = statusCode;
    }

    /// <summary>The HTTP status of the failed request, or null when the failure was not an HTTP status (offline, network, verification, a malformed answer).</summary>
    public HttpStatusCode? StatusCode { get; }
}
