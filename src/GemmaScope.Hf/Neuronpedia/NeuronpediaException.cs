using System.Net;

namespace GemmaScope.Hf;

/// <summary>
/// Neuronpedia refused or failed a request, offline mode found nothing cached, or an export or answer is malformed
/// (the message names the file or address, the line and the field).
/// </summary>
/// <param name="message">What failed.</param>
/// <param name="statusCode">The HTTP status Neuronpedia answered with, or null.</param>
/// <param name="innerException">The underlying exception, if any.</param>
public sealed class NeuronpediaException(string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
    : ServiceException(message, statusCode, innerException);
