using System.Net;

namespace GemmaScope.Hf;

/// <summary>
/// Neuronpedia refused or failed a request, offline mode found nothing cached, or an export or answer is malformed
/// (the message names the file or address, the line and the field).
/// </summary>
public sealed class NeuronpediaException : IOException
{
    /// <summary>Creates the exception.</summary>
    public NeuronpediaException(string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        StatusCode = statusCode;
    }

    /// <summary>The HTTP status of the failed request, or null when the failure was not an HTTP status.</summary>
    public HttpStatusCode? StatusCode { get; }
}
