using GemmaScope.Onnx;

namespace GemmaScope.Tests;

/// <summary>The engines a checkpoint-folder test runs on: every test that takes a <see cref="GemmaEngineKind"/> runs on each.</summary>
public static class EngineData
{
    /// <summary>ONNX Runtime and the native engine (ONNX Runtime alone while the engine project is the facade's stub).</summary>
    public static TheoryData<GemmaEngineKind> All =>
        GemmaModel.NativeEngineAvailable ? [GemmaEngineKind.OnnxRuntime, GemmaEngineKind.Native] : [GemmaEngineKind.OnnxRuntime];

    /// <summary>Options that pick <paramref name="engine"/>.</summary>
    public static GemmaModelOptions Options(GemmaEngineKind engine) => new() { Engine = engine };
}
