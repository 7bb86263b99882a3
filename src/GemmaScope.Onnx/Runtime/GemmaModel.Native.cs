namespace GemmaScope.Onnx;

public sealed partial class GemmaModel
{
    // Until the native engine (GemmaScope.Engine) is merged, Auto keeps ONNX Runtime.
    private const bool NativeEngineAvailable = false;

    private static GemmaModel FromPretrainedNative(string path, GemmaModelOptions options) =>
        throw new NotSupportedException($"The native engine is not in this build; open '{path}' with GemmaModelOptions.Engine = OnnxRuntime.");
}
