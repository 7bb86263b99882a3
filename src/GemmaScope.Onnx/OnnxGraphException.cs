namespace GemmaScope.Onnx;

/// <summary>
/// Thrown when an ONNX file is not a model this library can run: not ONNX at all, or not a Gemma decoder graph (no
/// decoder layers, no <c>input_ids</c> input or <c>logits</c> output, an input it cannot feed, an output of the wrong
/// shape). The message names the file and, where one is involved, the graph tensor, the expected and the actual value.
/// </summary>
public sealed class OnnxGraphException : GemmaScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The ONNX file (or, for a model built from a checkpoint, its folder).</param>
    /// <param name="tensor">The graph input, output or tensor involved, if any.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="expected">What was expected, if applicable.</param>
    /// <param name="actual">What was found, if applicable.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public OnnxGraphException(string file, string? tensor, string problem, string? expected = null, string? actual = null, Exception? inner = null)
        : base(file, "tensor", tensor, problem, expected, actual, inner)
    {
    }
}
