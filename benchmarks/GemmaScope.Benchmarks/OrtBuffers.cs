using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// A benchmark's preallocated input and output arrays bound as ORT values (ORT reads and writes the caller's memory, so
/// ORT and GemmaScope share the same buffers), and the one <see cref="RunOptions"/> its ORT calls use.
/// </summary>
internal sealed class OrtBuffers : IDisposable
{
    private readonly OrtValue _input;
    private readonly OrtValue _output;
    private readonly RunOptions _run = new();

    public OrtBuffers(float[] input, long[] inputShape, float[] output, long[] outputShape)
    {
        _input = OrtValue.CreateTensorValueFromMemory(input, inputShape);
        _output = OrtValue.CreateTensorValueFromMemory(output, outputShape);
    }

    /// <summary>Runs <paramref name="session"/> from the input array into the output array.</summary>
    public void Run(InferenceSession session, string[] inputNames, string[] outputNames) => session.Run(_run, inputNames, [_input], outputNames, [_output]);

    public void Dispose()
    {
        _input.Dispose();
        _output.Dispose();
        _run.Dispose();
    }
}
