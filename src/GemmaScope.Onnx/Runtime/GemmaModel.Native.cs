using GemmaScope.Engine;
using GemmaScope.Onnx.Runtime.Engines.Native;

namespace GemmaScope.Onnx;

public sealed partial class GemmaModel
{
    /// <summary>
    /// Whether this build carries the native engine; false while GemmaScope.Engine is the facade's temporary stub
    /// (FACADE-STUB.TEMPORARY.cs), so that Auto keeps ONNX Runtime. Set true when the stub is deleted.
    /// </summary>
    internal static bool NativeEngineAvailable { get; } = true;

    private static GemmaModel FromPretrainedNative(string path, GemmaModelOptions options)
    {
        var folder = Path.GetFullPath(path);
        var engine = GemmaEngine.Open(folder, new GemmaEngineOptions { Threads = options.IntraOpThreads });
        try
        {
            return new GemmaModel(new NativeModelEngine(engine, folder, options), TokenizerOf(folder), options);
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }
}
